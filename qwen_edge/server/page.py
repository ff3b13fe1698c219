"""The chat page at ``GET /``: one static HTML file over the server's own streaming endpoint.

The page is a client of ``POST /v1/chat/completions`` like any other: it holds no secret, so
the route is open even on an ``--api-key`` server (the page asks for the key and sends it with
each request). Its Content-Security-Policy lets it talk to this origin only and load nothing
from elsewhere, which keeps the "no CDN" promise checkable by the browser itself.
"""

from __future__ import annotations

from functools import cache
from importlib import resources

from fastapi import FastAPI
from fastapi.responses import HTMLResponse

__all__ = ["add_chat_page"]

_CSP = ("default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; "
        "connect-src 'self'; img-src 'self' data:; base-uri 'none'; form-action 'none'; "
        "frame-ancestors 'none'")


@cache
def _html() -> str:
    return (resources.files(__package__) / "static" / "index.html").read_text(encoding="utf-8")


def add_chat_page(app: FastAPI) -> None:
    """Serve the chat page at ``/`` (left out of the OpenAPI document)."""

    @app.get("/", include_in_schema=False)
    async def chat_page() -> HTMLResponse:
        return HTMLResponse(_html(), headers={"Content-Security-Policy": _CSP,
                                              "X-Content-Type-Options": "nosniff"})
