"""API reference pages that load nothing from the internet.

FastAPI's ``/docs`` and ``/redoc`` fetch Swagger UI or ReDoc from a CDN, which the hub's machines
and many council networks cannot reach: the page stays blank. ``add_docs`` turns those off and
serves ``/docs`` as one self-contained HTML file shipped in the package (static/api-docs.html:
a small renderer of the app's own ``openapi.json`` - paths, parameters, request bodies,
responses, schemas - with no external script, font or stylesheet). ``openapi.json`` is served as
before for tools that want the machine-readable form.
"""

from __future__ import annotations

from importlib import resources

from fastapi import FastAPI, Request
from fastapi.responses import HTMLResponse

_PAGE = resources.files("services.core") / "static" / "api-docs.html"


def docs_html(title: str, openapi_url: str) -> str:
    text = _PAGE.read_text(encoding="utf-8")
    from html import escape

    return (text.replace("{{TITLE}}", escape(title))
            .replace("{{OPENAPI_URL}}", escape(openapi_url, quote=True)))


def add_docs(app: FastAPI, path: str = "/docs") -> None:
    """Serve the offline reference at ``path``. Build the app with ``docs_url=None,
    redoc_url=None`` so the CDN pages are not registered."""

    @app.get(path, include_in_schema=False)
    def docs(request: Request) -> HTMLResponse:
        root = request.scope.get("root_path", "")
        return HTMLResponse(docs_html(app.title, f"{root}{app.openapi_url}"),
                            headers={"Cache-Control": "no-cache"})
