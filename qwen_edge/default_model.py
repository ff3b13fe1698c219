"""The model that ships inside the wheel: qwen-edge-tiny, a demo function-calling model.

HuggingFaceTB's SmolLM2-135M-Instruct (read from its GGUF, run as a ``Qwen2ForCausalLM``) with
the four Qwen2.5 tool tokens added, fine-tuned by ``train/smollm/finetune.py`` on the synthetic
home-assistant corpus of ``train/tiny`` for the seven tools of ``qwen_edge.demo.home_tools``.
Shipping it lets a fresh install show tool calling and routing without a download. It is a
demo model: see MODEL_CARD.md for what it can and cannot do, and for its status (its weights
are committed only once a run meets the quality bar).
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .errors import PackageNotFoundError

if TYPE_CHECKING:
    from .model import Model

__all__ = ["DEFAULT_MODEL", "DEFAULT_SYSTEM", "ROUTING_THRESHOLD", "default_package_path",
           "load_default"]

DEFAULT_MODEL = "qwen-edge-tiny"

# The system prompt the demo and the agent examples use (the model was trained with it, with
# the chat template's default one, and with two plain ones).
DEFAULT_SYSTEM = "You are a home assistant running on this device. Use the tools when they help."

# The router threshold for qwen-edge-tiny: set it to what ``train/tiny/evaluate.py --calibrate``
# (``qwen_edge.routing.calibrate`` on generated held-out requests) prints for the shipped
# weights. Until weights ship it is RoutingPolicy's default.
ROUTING_THRESHOLD = 0.5


def default_package_path() -> Path:
    """Where the shipped package is installed (inside the ``qwen_edge`` package)."""
    return Path(str(resources.files("qwen_edge").joinpath("models").joinpath(DEFAULT_MODEL)))


def load_default(**options: Any) -> Model:  # Model is imported lazily: keeps this module light
    """Open the shipped qwen-edge-tiny package: no download, no network.

    Args:
        **options: passed to ``qwen_edge.load`` (``threads``, ``max_context``, ...).

    Raises:
        PackageNotFoundError: this installation has no shipped model.

    Example:
        >>> model = qwen_edge.load_default()
        >>> model.generate([{"role": "user", "content": "Hi!"}]).text
    """
    from .model import load

    path = default_package_path()
    if not (path / "qwen_edge.json").is_file():
        msg = (f"{path}: no {DEFAULT_MODEL} package is installed (a build before the demo "
               "model shipped, or one without package data; see MODEL_CARD.md); load a package "
               "with qwen_edge.load(path), or run `qwen-edge demo --package PKG`")
        raise PackageNotFoundError(msg)
    return load(path, **options)
