"""The hub's shared library, by concern: ``kafka`` (clients, topics, the stage runner, the local
brokers), ``audit`` (the disclosure chain, its facts and reconciliation), ``crypto`` (canonical
JSON, field encryption, keys, pseudonym keyrings, officer trust anchors), ``config`` (settings, the
county file, the config topic's state), ``ops`` (health and metrics endpoints, status, retention,
stop signals), ``areas`` (ward and district lookup). ``errors`` is the root of every error the hub
raises; each subpackage's errors derive from it."""
