"""The hub's Kafka ACL table: which principal may do what to which topic and consumer group.

One table in code, so what ``s115hub acl apply`` installs on the brokers, what
``deploy/security/README.md`` documents and what the secured end-to-end test
(tests/security/test_secured_kafka.py) runs are the same rows; tests/deploy checks the README
against :func:`acl_table`. The brokers run ``allow.everyone.if.no.acl.found=false``, so anything
not here is denied.

Why each grant exists (measured against what the code does, not what it might do):

* Producers need WRITE and DESCRIBE (metadata) on the topic; idempotent producers need no cluster
  grant on Kafka >= 2.8 (KIP-679: WRITE on a topic implies IDEMPOTENT_WRITE).
* Consumers that commit need READ on their consumer group; readers that ``assign`` partitions
  (the config follower, scans) need no group grant.
* Creating a topic that exists answers TOPIC_AUTHORIZATION_FAILED unless the creator may DESCRIBE
  it (KRaft hides existence from non-describers), so provisioning needs CREATE *and* DESCRIBE.
  ``config apply`` provisions topics for new groups and partners, ingest re-provisions after a
  broker loss: both hold CREATE+DESCRIBE on the prefix, nothing else does.
* Configuration facts travel on ``<p>.audit.officer``, which only the officer may write and the
  router's chainer reads; facts of every other kind on ``<p>.audit.facts``.
* The officer CLI (``config apply``, ``dlq list|replay``, ``import police-uk``, ``protocol
  replay|status``, ``status``, ``audit``) reads and re-presents *sealed* raw records (WRITE on
  ``<p>.raw.``): it already holds the master key those commands need, so the grant adds no reach.
* Partners and groups get literal names only: ``group-<id>.`` is the one prefixed grant
  (consumer-group names), with a dot because ids may contain dashes (``grp-watford`` must not
  match ``grp-watford-east``).

Pure: no Kafka client here (services/cli/acl_cmds.py applies the table).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Literal

from services.core.config.county import County

Resource = Literal["topic", "group"]
Pattern = Literal["literal", "prefixed"]
Operation = Literal["read", "write", "describe", "create"]

INGEST, DEPERSONALISE, ROUTER, OFFICER = ("s115-ingest", "s115-depersonalise", "s115-router",
                                          "s115-officer")
SERVICE_USERS = (INGEST, DEPERSONALISE, ROUTER, OFFICER)


@dataclass(frozen=True, order=True)
class Grant:
    user: str  # the SCRAM user name; the principal is ``User:<user>``
    resource: Resource
    name: str
    pattern: Pattern
    operation: Operation

    @property
    def principal(self) -> str:
        return f"User:{self.user}"


def partner_user(partner_id: str) -> str:
    return f"partner-{partner_id}"


def group_user(group_id: str) -> str:
    return f"group-{group_id}"


def group_consumer_prefix(group_id: str) -> str:
    """Consumer-group names a tasking group may use: ``group-<id>.<anything>``."""
    return f"{group_user(group_id)}."


def _grants(user: str, resource: Resource, name: str, pattern: Pattern,
            *ops: Operation) -> list[Grant]:
    return [Grant(user, resource, name, pattern, op) for op in ops]


def service_grants(prefix: str = "s115") -> list[Grant]:
    """The hub's own principals (the same for every county)."""
    p = prefix
    t: list[Grant] = []
    # ingest: partners' inbound topics -> sealed raw records and dead letters.
    t += _grants(INGEST, "topic", f"{p}.inbound.", "prefixed", "read", "describe")
    t += _grants(INGEST, "group", f"{p}.ingest-inbound", "literal", "read")
    t += _grants(INGEST, "topic", f"{p}.raw.", "prefixed", "write", "describe")
    t += _grants(INGEST, "topic", f"{p}.rejected", "literal", "write", "describe")
    t += _grants(INGEST, "topic", f"{p}.config", "literal", "read", "describe")
    t += _grants(INGEST, "topic", f"{p}.", "prefixed", "create", "describe")
    # depersonalise: sealed raw records -> depersonalised shared records and dead letters.
    t += _grants(DEPERSONALISE, "topic", f"{p}.raw.", "prefixed", "read", "describe")
    t += _grants(DEPERSONALISE, "group", f"{p}.depersonalise", "literal", "read")
    t += _grants(DEPERSONALISE, "topic", f"{p}.shared", "literal", "write", "describe")
    t += _grants(DEPERSONALISE, "topic", f"{p}.rejected", "literal", "write", "describe")
    # Facts about withheld and generalised records (issue 16's accounting).
    t += _grants(DEPERSONALISE, "topic", f"{p}.audit.facts", "literal", "write", "describe")
    t += _grants(DEPERSONALISE, "topic", f"{p}.config", "literal", "read", "describe")
    # router: shared -> group topics; reads back what it delivered (ledger seed, group page);
    # the single audit chainer (the only principal that may write the chain).
    t += _grants(ROUTER, "topic", f"{p}.shared", "literal", "read", "describe")
    t += _grants(ROUTER, "group", f"{p}.router", "literal", "read")
    t += _grants(ROUTER, "group", f"{p}.audit-chainer", "literal", "read")
    t += _grants(ROUTER, "topic", f"{p}.config", "literal", "read", "describe")
    t += _grants(ROUTER, "topic", f"{p}.deliver.", "prefixed", "read", "write", "describe")
    t += _grants(ROUTER, "topic", f"{p}.hotspots.", "prefixed", "read", "write", "describe")
    t += _grants(ROUTER, "topic", f"{p}.router.hotspot-state", "literal",
                 "read", "write", "describe")
    t += _grants(ROUTER, "topic", f"{p}.audit.facts", "literal", "read", "write", "describe")
    # Config facts come only from the officer's own topic (services/router/audit_sink.py).
    t += _grants(ROUTER, "topic", f"{p}.audit.officer", "literal", "read", "describe")
    t += _grants(ROUTER, "topic", f"{p}.audit", "literal", "read", "write", "describe")
    # The stage runner dead-letters what a stage cannot process (issue 12).
    t += _grants(ROUTER, "topic", f"{p}.rejected", "literal", "write", "describe")
    # officer CLI: config and its audit facts; dead letters; sealed raw records (import, dlq
    # replay, protocol replay, status); the chain (audit verify/query); provisioning.
    t += _grants(OFFICER, "topic", f"{p}.config", "literal", "read", "write", "describe")
    # The CLI's facts are config facts, which go to the officer's own topic
    # (services/core/audit/chain_io.py): the only principal that may claim a configuration change.
    t += _grants(OFFICER, "topic", f"{p}.audit.officer", "literal", "write", "describe")
    t += _grants(OFFICER, "topic", f"{p}.audit", "literal", "read", "describe")
    t += _grants(OFFICER, "topic", f"{p}.rejected", "literal", "read", "write", "describe")
    t += _grants(OFFICER, "topic", f"{p}.raw.", "prefixed", "read", "write", "describe")
    t += _grants(OFFICER, "topic", f"{p}.", "prefixed", "create", "describe")
    return t


def partner_grants(partner_id: str, prefix: str = "s115") -> list[Grant]:
    """A partner's Kafka publisher: its own inbound topic, nothing else."""
    return _grants(partner_user(partner_id), "topic", f"{prefix}.inbound.{partner_id}",
                   "literal", "write", "describe")


def group_grants(group_id: str, prefix: str = "s115") -> list[Grant]:
    """A tasking group's consumer: its two topics and its own consumer-group names."""
    u = group_user(group_id)
    return [*_grants(u, "topic", f"{prefix}.deliver.{group_id}", "literal", "read", "describe"),
            *_grants(u, "topic", f"{prefix}.hotspots.{group_id}", "literal", "read", "describe"),
            *_grants(u, "group", group_consumer_prefix(group_id), "prefixed", "read")]


def acl_table(county: County, prefix: str = "s115") -> list[Grant]:
    """Every grant for ``county``, sorted and without repeats."""
    rows = service_grants(prefix)
    for partner in county.partners:
        rows += partner_grants(partner.id, prefix)
    for group in county.groups:
        rows += group_grants(group.id, prefix)
    return sorted(set(rows))


def users_of(county: County) -> list[str]:
    """Every SCRAM user the table names."""
    return sorted({*SERVICE_USERS, *(partner_user(p.id) for p in county.partners),
                   *(group_user(g.id) for g in county.groups)})


def revoke_partner(grants: Iterable[Grant], partner_id: str) -> list[Grant]:
    """The grants to delete when a partner is revoked."""
    return [g for g in grants if g.user == partner_user(partner_id)]
