"""``s115hub protocol``: officer keys, signing and verifying protocol documents."""

from __future__ import annotations

from datetime import UTC, date, datetime
from pathlib import Path

import typer

from services.core.config.county import County, load_county
from services.core.config.publish import (
    Message,
    county_messages,
    officer_messages,
    protocol_message,
)
from services.core.config.state import ConfigState
from services.core.crypto.officer_trust import AnchorFile

protocol_app = typer.Typer(help="Section 115 protocols: keys, signatures, verification.",
                           no_args_is_help=True)


@protocol_app.command("keygen")
def keygen(party: str, out_dir: Path = typer.Option(Path("officer-keys"))) -> None:
    """Generate an Ed25519 officer key for PARTY (private key mode 0600; never commit it)."""
    from services.protocols.signing import generate_officer_key, save_private_key

    private_pem, public_pem, kid = generate_officer_key()
    save_private_key(out_dir / party / f"{kid}.key.pem", private_pem)
    (out_dir / party / f"{kid}.pub.pem").write_bytes(public_pem)
    typer.echo(f"officer key {kid} for {party}: {out_dir / party}")


@protocol_app.command("sign")
def sign(file: Path, key: Path = typer.Option(..., help="The officer's private key PEM."),
         party: str = typer.Option(None, help="The signing party (default: the key's directory "
                                              "name, as `protocol keygen` lays keys out)."),
         officer: str = typer.Option(None, help="The officer's name (default: the officer the "
                                                "county file names for PARTY)."),
         config_dir: Path = typer.Option(None, help="Holds county.yaml (default: the protocol "
                                                    "file's parent's parent if it holds one, "
                                                    "else S115HUB_CONFIG_DIR).")) -> None:
    """Add PARTY's signature to the protocol FILE, in place, keeping its comments and layout."""
    from services.cli.protocol_text import with_signatures
    from services.core.errors import HubError
    from services.protocols.protocol import load_protocol
    from services.protocols.signing import load_private_key, sign_protocol

    protocol = load_protocol(file)
    party = party or key.resolve().parent.name
    if party not in protocol.parties:
        raise HubError(f"{party!r} is not a party to {protocol.ref} (parties: "
                       f"{', '.join(protocol.parties)}); give --party")
    if officer is None:
        county_file = _county_file_for(file, config_dir)
        county = load_county(county_file)
        named = next((x.officer for x in [*county.partners, *county.groups] if x.id == party),
                     None)
        if named is None:
            raise HubError(f"{party!r} is in no county file ({county_file}); give --officer")
        officer = named
    signed = sign_protocol(protocol, load_private_key(key), party, officer)
    text = with_signatures(file.read_text(encoding="utf-8"), signed, str(file))
    file.write_text(text, encoding="utf-8")
    typer.echo(f"signed {signed.ref} for {party} ({officer})")


def _county_file_for(protocol_file: Path, config_dir: Path | None) -> Path:
    if config_dir is not None:
        return config_dir / "county.yaml"
    beside = protocol_file.resolve().parent.parent / "county.yaml"
    if beside.is_file():
        return beside
    from services.core.config.settings import Settings

    return Settings().config_dir / "county.yaml"


@protocol_app.command("verify")
def verify(file: Path, officers_dir: Path = typer.Option(
        None, help="<party>/*.pub.pem. Default: officers/ of the county directory FILE is in "
                   "(<county>/protocols/FILE).")) -> None:
    """Say whether FILE is live today, and why not."""
    from services.protocols.lifecycle import protocol_status
    from services.protocols.protocol import load_protocol
    from services.protocols.signing import load_officer_keys

    if officers_dir is None:
        officers_dir = file.resolve().parent.parent / "officers"
        if not officers_dir.is_dir():
            raise typer.BadParameter(f"no officers directory at {officers_dir}; name one",
                                     param_hint="--officers-dir")
    p = load_protocol(file)
    st = protocol_status(p, today=datetime.now(UTC).date(),
                         officer_keys=load_officer_keys(officers_dir))
    typer.echo(f"{st.ref}: {'LIVE' if st.live else 'NOT LIVE'}"
               + (f" ({'; '.join(st.reasons)})" if st.reasons else "")
               + (" [review due]" if st.review_due else ""))
    raise typer.Exit(0 if st.live else 1)


def default_sources(state_dir: Path, config_dir: Path) -> tuple[Path, Path]:
    """Where the signed protocols and officer public keys are: beside the county file in
    production; in the state directory of a demo, which signs copies there at start-up."""
    from services.core.config.state_dir import DEMO_MARKER

    base = state_dir if (state_dir / DEMO_MARKER).exists() else config_dir
    return base / "protocols", base / "officers"


def config_messages(config_dir: Path, protocols_dir: Path, officer_keys: Path
                    ) -> tuple[list[Message], County]:
    """What ``config apply`` publishes: the county, the officer keys of the pinned anchor file
    (refused unless the county pins that very file) and the signed protocols."""
    from services.core.config.errors import ConfigError
    from services.core.crypto.officer_trust import fingerprint, load_log
    from services.protocols.protocol import load_protocol

    county = load_county(config_dir / "county.yaml")
    messages = county_messages(config_dir / "county.yaml")
    if officer_keys.is_dir():
        # Callers that still pass the officers/ directory (production `up`, `config check`):
        # the pinned file sits beside it in the county directory.
        officer_keys = officer_keys.parent / "officer-keys.yaml"
    log = load_log(officer_keys)
    if log is None:
        raise ConfigError("no pinned officer key file (create it with `s115hub officer-keys init "
                          "FILE --officers-dir DIR` and pin its sha256 in county.yaml)",
                          file=str(officer_keys))
    if county.officer_keys_sha256 != fingerprint(log):
        raise ConfigError(f"county.yaml pins officer_keys_sha256 "
                          f"{county.officer_keys_sha256 or '(none)'} but {officer_keys.name} is "
                          f"{fingerprint(log)}; an officer must approve the key file in "
                          "county.yaml",
                          file=str(config_dir / "county.yaml"), field="officer_keys_sha256")
    messages += officer_messages(log)
    for path in sorted(protocols_dir.glob("*.yaml")):
        p = load_protocol(path)  # fail here, at apply time, not in the services
        messages.append(protocol_message(p.ref, path.read_text(encoding="utf-8"), path.name))
    return messages, county


def status_lines(state: ConfigState, today: date, anchors: AnchorFile | None = None) -> list[str]:
    """What ``protocol status`` prints: each protocol version, then each partner feed."""
    from services.protocols.in_force import protocol_set_of

    pset, errors = protocol_set_of(state, anchors)
    governing = {p.ref for p in pset.current(today)}
    lines = []
    for p in pset:
        st = pset.status(p, today)
        if st.live:
            word = "LIVE" if p.ref in governing else "LIVE (superseded by a newer live version)"
        else:
            word = f"BLOCKED [{st.cause}] ({'; '.join(st.reasons)})"
        review = (f"; REVIEW DUE since {p.review_by.isoformat()}" if st.review_due
                  else f"; review by {p.review_by.isoformat()}")
        lines.append(f"protocol {p.ref}: {word}{review}")
    for ref, problem in sorted(errors.items()):
        lines.append(f"protocol {ref}: REFUSED ({problem})")
    if state.county is not None:
        for partner in state.county.partners:
            for feed in partner.feeds:
                live = pset.live_for(partner.id, feed, today)
                if live:
                    refs = ", ".join(p.ref for p in live)
                    lines.append(f"feed {partner.id}/{feed}: released under {refs}")
                else:
                    cause, detail = pset.blocked_cause(partner.id, feed, today)
                    # The protocol lines above carry the full reasons; one ref is enough here.
                    detail = detail.split(":")[0]
                    lines.append(f"feed {partner.id}/{feed}: BLOCKED [{cause}] ({detail}); "
                                 "records stay on the raw topic, unreleased")
    return lines


@protocol_app.command("status")
def status() -> None:
    """Each protocol on the config topic: live, or blocked and why; review due; and each
    partner feed: which protocol releases it, or why its records are blocked."""
    import asyncio

    from services.core.config.settings import Settings
    from services.core.kafka.scan import scan
    from services.core.kafka.topics import topics_for

    settings = Settings()
    state = ConfigState()

    async def read() -> None:
        async for msg in scan(settings, topics_for(settings).config):
            state.apply_lenient(msg.key, msg.value)

    asyncio.run(read())
    lines = status_lines(state, datetime.now(UTC).date(),
                         AnchorFile(settings.resolved_officer_keys_file()))
    for line in lines:
        typer.echo(line)
    if not lines:
        typer.echo(f"no protocols on {topics_for(settings).config}")
    blocked = any(" BLOCKED " in line or " REFUSED " in line for line in lines)
    raise typer.Exit(1 if blocked else 0)


@protocol_app.command("replay")
def replay(
    since: datetime = typer.Option(..., help="Records received at or after this time (UTC)."),
    until: datetime | None = typer.Option(None, help="... and before this time."),
    feed: list[str] = typer.Option(None, "--feed", help="Feeds to replay (default: all)."),
    partner: str | None = typer.Option(None, help="Only this partner's records."),
    dry_run: bool = typer.Option(False, "--dry-run", help="Count, do not send."),
) -> None:
    """Present raw records to depersonalise again — typically those a feed published while no
    live protocol covered it, after the protocol has been signed. Whatever is live now decides
    what is released; a record a group already received is not delivered to it twice."""
    import asyncio

    from services.cli.raw_replay import replay_raw
    from services.core.config.settings import Settings
    from services.core.kafka.topics import FEED_NAMES

    def utc(t: datetime) -> datetime:
        return t if t.tzinfo else t.replace(tzinfo=UTC)

    feeds = feed or list(FEED_NAMES)
    unknown = sorted(set(feeds) - set(FEED_NAMES))
    if unknown:
        raise typer.BadParameter(f"unknown feed(s) {unknown}; feeds are {list(FEED_NAMES)}",
                                 param_hint="--feed")
    counts = asyncio.run(replay_raw(Settings(), feeds, since=utc(since),
                                    until=utc(until) if until else None, partner=partner,
                                    dry_run=dry_run, progress=typer.echo))
    typer.echo(f"scanned {counts['scanned']}, matched {counts['matched']}, sent {counts['sent']}"
               + (f", {counts['unreadable']} unreadable" if counts["unreadable"] else ""))
