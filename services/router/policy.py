"""The router's view of protocols: which refs are live and whom they name. The router re-checks
liveness itself rather than trusting the stamp on a record, so a revocation stops delivery even
for records released a moment before it."""

from services.depersonalise.policy import live_recipients

__all__ = ["live_recipients"]
