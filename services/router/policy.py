"""The router's view of protocols: which refs are live and whom they name. The router re-checks
liveness itself rather than trusting the stamp on a record, so a revocation stops delivery even
for records released a moment before it.

The officer page (web/officer.py) takes protocol statuses and the protocol document from here
too, so the protocol code has one way into the router."""

from services.depersonalise.policy import live_recipients, protocol_rows, protocol_set_of
from services.depersonalise.protocol_document import (
    DocumentContext,
    render_html,
)

__all__ = ["DocumentContext", "live_recipients", "protocol_rows", "protocol_set_of",
           "render_html"]
