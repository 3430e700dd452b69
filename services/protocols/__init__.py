"""The information sharing protocol, shared by every service that must know what a protocol
allows: its model and loading (``protocol``), the rule language it is written in (``transforms``
and the signed word lists in ``vocabularies``), sign-off (``signing``), lifecycle and liveness at a
given instant (``lifecycle``), the protocols in force from the config topic (``in_force``) and the
officer's readable document (``document``).

A shared library like ``services.core``, not a service: depersonalise applies protocols, the
router checks which are live and whom they name, the CLI loads, signs and prints them. None of
them imports another service to do so."""
