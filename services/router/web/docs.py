"""The group API's reference page, offline (see services/core/api_docs.py)."""

from services.core.api_docs import add_docs

__all__ = ["add_docs"]
