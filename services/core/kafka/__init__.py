"""Kafka glue, the one place the hub touches a broker client: client settings (``clients``),
topic names and provisioning (``topics``), reading a topic to its end (``scan``), the one
consume -> process -> produce loop (``stage_runner``), the ACL table (``acls``), the embedded and
the local Apache Kafka brokers (``broker``, ``local``). Client exceptions become ``BrokerError``s
here (``errors``), so callers never look at a client's exception types."""
