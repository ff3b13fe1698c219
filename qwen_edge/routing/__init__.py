"""Hybrid routing: the ``Backend`` protocol, ``Router`` (a Backend over a local and a remote
one), ``RoutingPolicy``, redaction, confidence scoring and the HTTP client (``remote``)."""

from __future__ import annotations

from ..redaction import DEFAULT_REDACT, redact_text
from .backend import Backend, LocalBackend, RemoteBackend
from .confidence import calibrate, confidence_of, roc_auc, score_confidence
from .policy import SCRIPTS, RoutingPolicy
from .remote import Remote
from .router import RoutedCompletion, RoutedStream, Router

__all__ = [
    "DEFAULT_REDACT",
    "SCRIPTS",
    "Backend",
    "LocalBackend",
    "Remote",
    "RemoteBackend",
    "RoutedCompletion",
    "RoutedStream",
    "Router",
    "RoutingPolicy",
    "calibrate",
    "confidence_of",
    "redact_text",
    "roc_auc",
    "score_confidence",
]
