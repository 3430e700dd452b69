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

from fastapi import APIRouter, FastAPI, Request
from fastapi.responses import HTMLResponse

_PAGE = resources.files("services.core") / "static" / "api-docs.html"


def docs_html(title: str, openapi_url: str) -> str:
    text = _PAGE.read_text(encoding="utf-8")
    from html import escape

    return (text.replace("{{TITLE}}", escape(title))
            .replace("{{OPENAPI_URL}}", escape(openapi_url, quote=True)))


docs_router = APIRouter(include_in_schema=False)


@docs_router.get("/docs")
def docs(request: Request) -> HTMLResponse:
    """The reference of the app serving the request (its title and its own openapi.json)."""
    root = request.scope.get("root_path", "")
    app = request.app
    return HTMLResponse(docs_html(app.title, f"{root}{app.openapi_url}"),
                        headers={"Cache-Control": "no-cache"})


def add_docs(app: FastAPI) -> None:
    """Serve the offline reference at ``/docs``. Build the app with ``docs_url=None,
    redoc_url=None`` so the CDN pages are not registered."""
    app.include_router(docs_router)
