"""What operators see and run: /healthz, /readyz and /metrics (``service``, ``metrics``,
``api_docs``), stopping on signals (``stop_signals``), the hub's status and dead letters read
back from durable topics (``status``, ``durable``, ``dead_letters``), and retention
(``retention``, ``retention_io``)."""
