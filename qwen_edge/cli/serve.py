"""``qwen-edge serve PKG``: an OpenAI-compatible HTTP server (needs ``qwen-edge[serve]``)."""

from __future__ import annotations

import argparse
import ipaddress
import logging
import os
from typing import Any

from ..errors import ConfigError, QwenEdgeError
from ._common import add_model_flags

__all__ = ["add_parser", "run"]

_KEY_ENV = "QWEN_EDGE_API_KEY"


def add_parser(subparsers: Any) -> None:
    p: argparse.ArgumentParser = subparsers.add_parser(
        "serve", help="serve the model over an OpenAI-compatible HTTP API",
        description="Serve POST /v1/chat/completions (tools, JSON schema, streaming), "
        "GET /v1/models, GET /health, and a chat page at GET /. Point any OpenAI client at "
        "http://HOST:PORT/v1, or a browser at http://HOST:PORT/. "
        "Requests generate one at a time; others wait (up to --max-queue, then 429). "
        "One request per line is logged to stderr.",
    )
    add_model_flags(p)
    p.add_argument("--host", default="127.0.0.1",
                   help="address to bind (default: 127.0.0.1; any other needs --api-key)")
    p.add_argument("--port", type=int, default=8000, help="port (default: 8000)")
    p.add_argument("--api-key", default=None,
                   help=f"require 'Authorization: Bearer KEY' on /v1 routes (default: ${_KEY_ENV})")
    p.add_argument("--model-name", default=None,
                   help="model id clients send and see (default: the package folder name)")
    p.add_argument("--max-queue", type=int, default=16,
                   help="requests that may wait while one generates; more get 429 (default: 16)")
    p.add_argument("--max-tokens-limit", type=int, default=4096,
                   help="largest max_tokens a request may ask for (default: 4096)")
    p.add_argument("--max-request-bytes", type=int, default=4 * 2**20,
                   help="largest request body in bytes; larger get 413 (default: 4 MiB)")
    p.set_defaults(run=run)


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:  # a host name: it may resolve to anything
        return False


def run(args: argparse.Namespace) -> int:
    api_key = args.api_key if args.api_key is not None else os.environ.get(_KEY_ENV) or None
    if api_key is None and not _is_loopback(args.host):
        msg = (f"--host {args.host} is reachable from other machines: pass --api-key KEY (or set "
               f"{_KEY_ENV}), or bind 127.0.0.1")
        raise ConfigError(msg)
    try:
        import uvicorn

        from ..server import create_app
    except ImportError as exc:
        msg = f"qwen-edge serve needs the serve extra: pip install 'qwen-edge[serve]' ({exc})"
        raise QwenEdgeError(msg) from exc
    from .. import load

    model = load(args.package, threads=args.threads, max_context=args.max_context,
                 tool_format=args.tool_format)
    app = create_app(model, api_key=api_key, max_queue=args.max_queue,
                     max_request_bytes=args.max_request_bytes,
                     max_tokens_limit=args.max_tokens_limit, model_name=args.model_name)
    logging.getLogger("qwen_edge.server").setLevel(logging.INFO)  # the per-request lines
    config = uvicorn.Config(app, host=args.host, port=args.port, access_log=False,
                            log_level="info", timeout_graceful_shutdown=5)
    uvicorn.Server(config).run()
    return 0
