"""Configuration: settings from the environment (``settings``), the county file (``county``),
YAML with file and line in errors (``yamlconf``), the config topic's state and its follower and
publisher (``state``, ``follow``, ``publish``), and the state directory (``state_dir``)."""
