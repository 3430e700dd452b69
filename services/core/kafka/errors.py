"""The Kafka glue's errors, in the hub's error tree (``services/core/errors.py``), and the one
place that recognises a broker client's own exceptions.

Callers never look at an exception's module or class name to tell "the broker is down" from a
bug: they ask ``is_client_error`` (or catch ``BrokerError``), so a new client version or a
renamed module cannot silently turn an outage into a dead letter."""

from __future__ import annotations

import aiokafka.errors
import kafka.errors

from services.core.errors import HubError

#: The root exception of each broker client the hub uses: everything they raise on purpose.
CLIENT_ERRORS: tuple[type[BaseException], ...] = (aiokafka.errors.KafkaError,
                                                  kafka.errors.KafkaError)


class BrokerError(HubError):
    """Something about the broker, not about a record: the root of the Kafka glue's errors."""


class BrokerUnavailable(BrokerError):
    """The Kafka broker could not be reached or did not acknowledge in time."""


class TopicShapeError(BrokerError):
    """A topic exists with a shape the hub cannot run on (partitions, cleanup, retention)."""


def is_client_error(exc: BaseException) -> bool:
    """True for an exception a broker client raised (connection, timeout, protocol errors)."""
    return isinstance(exc, CLIENT_ERRORS)
