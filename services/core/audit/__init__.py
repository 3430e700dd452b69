"""The disclosure audit trail: facts the services publish (``facts``, ``accounting``), the hash
chain and its checkpoints (``chain``, ``log``, ``key``), reading it back (``chain_io``),
exporting it (``bundle``) and reconciling what became of each record (``reconcile``)."""
