"""The group API's reference page, offline (see services/core/ops/api_docs.py)."""

from services.core.ops.api_docs import add_docs

__all__ = ["add_docs"]
