"""``qwen-edge serve``: an OpenAI-compatible HTTP server (needs the ``serve`` extra)."""

from __future__ import annotations

from .app import create_app

__all__ = ["create_app"]
