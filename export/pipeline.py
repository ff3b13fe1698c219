"""export_model: Hugging Face Qwen checkpoint -> quantized ONNX model package.

    load_checkpoint -> build_decoder (fp32, contrib ops, lazy weights)
        -> default_pipeline(cfg) (quantization passes) -> write_package

Weights stream: each initializer is read from the memory-mapped safetensors, converted
(and quantized) only when the writer reaches it, and dropped right after.
"""

from __future__ import annotations

import logging
import math
import os
import resource
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from qwen_edge.errors import ConfigError, TokenizerError
from qwen_edge.tool_formats import detect_format, get_format

from .checkpoint import load_checkpoint
from .gguf import GGUFCheckpoint, is_gguf, load_gguf
from .passes import default_pipeline
from .qwen import build_decoder
from .weights import Checkpoint
from .writer import MODEL_FILE, TOKENIZER_FILE, check_output, write_package

if TYPE_CHECKING:
    from collections.abc import Mapping

__all__ = ["QUANT_METHODS", "ExportConfig", "ExportResult", "export_model"]

logger = logging.getLogger(__name__)

QUANT_METHODS = ("int4", "int8", "fp32")
_GENERATION_KEYS = ("temperature", "top_p", "top_k", "min_p", "repetition_penalty",
                    "presence_penalty", "frequency_penalty", "do_sample", "max_new_tokens")


@dataclass(frozen=True, slots=True, kw_only=True)
class ExportConfig:
    """How to export.

    Attributes:
        quant: ``int4`` (MatMulNBits 4-bit), ``int8`` (MatMulNBits 8-bit) or
            ``fp32`` (reference, for parity checks).
        block_size: quantization block along the input dimension (power of two, >= 16).
        accuracy_level: MatMulNBits ``accuracy_level``; 4 = int8 activations (fastest on CPU).
        max_context: KV cache length the package supports (default: the model's
            ``max_position_embeddings``).
        symmetric: quantize without zero points (the ops' default zero point 2^(bits-1)),
            the default: smaller, what onnxruntime-genai and llama.cpp's Q4_0 ship, and
            onnxruntime's int8-activation kernels skip the zero-point work, which costs speed
            on some CPUs (docs/performance.md, "Quantization accuracy"). ``False``: a uint8
            zero point per block (asymmetric), more accurate on skewed blocks.
        scale_search: with ``symmetric``, choose each block's scale by least squares over a
            few clipping ratios instead of round-to-nearest from the block's range
            (``export.quant.quantize_blockwise(search=True)``); ignored when asymmetric.
        embedding_quant: ``int4`` / ``int8`` for the token embedding and the lm_head (one
            table when tied), None: as ``quant``. The head decides every token and in a small
            model it is a large share of the weights, so it is the first tensor to give more
            bits (llama.cpp's Q4_K_M keeps its output tensor at 6 bits); how much that
            recovers is measured per model (docs/export.md, "Quantization").
        layer_quant: per decoder layer, ``{index: "int4" | "int8" | "fp32"}``, overriding
            ``quant`` for every MatMul of that layer (``fp32``: left unquantized), like
            llama.cpp's ``--tensor-type`` overrides. For a fine-tune that trained only some
            layers, those are the ones to give more bits; the manifest's
            ``quantization.layers`` records the overrides.
        tool_format: the tool-call format recorded in the manifest (``"hermes"``,
            ``"qwen3_xml"``); None detects it from the package's chat template
            (``qwen_edge.tool_formats.detect_format``).
    """

    quant: str = "int4"
    block_size: int = 32
    accuracy_level: int = 4
    max_context: int | None = None
    symmetric: bool = True
    scale_search: bool = True
    embedding_quant: str | None = None
    layer_quant: Mapping[int, str] | None = None
    tool_format: str | None = None

    def __post_init__(self) -> None:
        if self.quant not in QUANT_METHODS:
            msg = f"quant={self.quant!r}: must be one of {', '.join(QUANT_METHODS)}"
            raise ConfigError(msg)
        if self.block_size < 16 or self.block_size & (self.block_size - 1):
            msg = f"block_size={self.block_size}: must be a power of two >= 16"
            raise ConfigError(msg)
        if self.accuracy_level not in (0, 1, 2, 3, 4):
            msg = f"accuracy_level={self.accuracy_level}: must be 0..4"
            raise ConfigError(msg)
        if self.max_context is not None and self.max_context < 1:
            msg = f"max_context={self.max_context}: must be >= 1"
            raise ConfigError(msg)
        if self.embedding_quant is not None and (
                self.quant == "fp32" or self.embedding_quant not in ("int4", "int8")):
            msg = (f"embedding_quant={self.embedding_quant!r}: must be 'int4' or 'int8', with "
                   f"quant 'int4' or 'int8' (got quant={self.quant!r})")
            raise ConfigError(msg)
        if self.layer_quant:
            bad = {k: v for k, v in self.layer_quant.items()
                   if not isinstance(k, int) or k < 0 or v not in QUANT_METHODS}
            if bad or self.quant == "fp32":
                msg = (f"layer_quant={dict(self.layer_quant)!r}: must map layer indices >= 0 to "
                       f"one of {', '.join(QUANT_METHODS)}, with quant 'int4' or 'int8' (got "
                       f"quant={self.quant!r}{f'; bad: {bad}' if bad else ''})")
                raise ConfigError(msg)
        if self.tool_format is not None:
            get_format(self.tool_format)  # ConfigError listing the known formats


@dataclass(frozen=True, slots=True, kw_only=True)
class ExportResult:
    """What ``export_model`` wrote, and what it cost."""

    path: Path
    nbytes: int
    seconds: float
    peak_rss_mb: float
    # Checkpoint parts left out of the graph (Qwen3.5: vision tower, MTP), as in the manifest.
    ignored: dict[str, Any] = field(default_factory=dict)


def _peak_rss_mb() -> float:
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / (1 << 20) if sys.platform == "darwin" else peak / 1024


def _tokenizer(ckpt: Checkpoint | GGUFCheckpoint) -> tuple[str, str | None]:
    """(tokenizer.json text, chat template): the checkpoint's, else the built-in Qwen one.

    Qwen3.5 has its own 248k tokenizer, which cannot be built offline: its checkpoints must
    carry tokenizer.json (synth ones carry Qwen3's, see ``synth``).
    """
    variant = "qwen3" if ckpt.config.architecture == "Qwen3ForCausalLM" else "qwen2.5"
    text = ckpt.tokenizer_text()
    if text is not None:
        return text, ckpt.chat_template
    if ckpt.config.linear is not None:
        msg = (f"{ckpt.path}: no tokenizer.json; Qwen3.5's tokenizer cannot be built offline, "
               "copy tokenizer.json (and tokenizer_config.json) from the Hugging Face checkpoint "
               "into this folder")
        raise TokenizerError(msg)
    from .tokenizer import CHAT_TEMPLATES, build_qwen_tokenizer

    logger.info("%s has no tokenizer.json; building the %s tokenizer", ckpt.path, variant)
    return build_qwen_tokenizer(variant).to_str(), ckpt.chat_template or CHAT_TEMPLATES[variant]


def _special_tokens(tokenizer_json: str) -> dict[str, int]:
    import json

    data = json.loads(tokenizer_json)
    return {t["content"]: int(t["id"]) for t in data.get("added_tokens", [])}


def _stop_token_ids(ckpt: Checkpoint | GGUFCheckpoint, special: dict[str, int]) -> list[int]:
    ids: list[int] = []
    eos = ckpt.generation_config.get("eos_token_id", ckpt.raw_config.get("eos_token_id"))
    for tok in eos if isinstance(eos, list) else [eos]:
        if isinstance(tok, int) and tok not in ids:
            ids.append(tok)
    for name in ("<|im_end|>", "<|endoftext|>"):
        if name in special and special[name] not in ids:
            ids.append(special[name])
    return ids


def build_manifest(ckpt: Checkpoint | GGUFCheckpoint, cfg: ExportConfig, *, max_context: int,
                   tokenizer_json: str, chat_template: str | None, src: str) -> dict[str, Any]:
    c = ckpt.config
    special = _special_tokens(tokenizer_json)
    if not special:
        msg = f"{ckpt.path}: tokenizer has no added special tokens; is this a Qwen tokenizer?"
        raise TokenizerError(msg)
    bits = {"int4": 4, "int8": 8}.get(cfg.quant)
    manifest: dict[str, Any] = {
        "name": Path(src).name or src,
        "architecture": c.architecture,
        "model_type": c.model_type,
        "shapes": {
            "vocab_size": c.vocab_size,
            "hidden_size": c.hidden_size,
            "intermediate_size": c.intermediate_size,
            "num_hidden_layers": c.num_hidden_layers,
            "num_attention_heads": c.num_attention_heads,
            "num_key_value_heads": c.num_key_value_heads,
            "head_dim": c.head_dim,
            "tie_word_embeddings": c.tie_word_embeddings,
            "rope_theta": c.rope_theta,
            "rms_norm_eps": c.rms_norm_eps,
            "qk_norm": c.qk_norm,
            "max_position_embeddings": c.max_position_embeddings,
        },
        "quantization": {
            "method": cfg.quant,
            "bits": bits,
            "block_size": cfg.block_size if bits else None,
            "accuracy_level": cfg.accuracy_level if bits else None,
            "embedding": cfg.embedding_quant or cfg.quant,
            "lm_head": cfg.embedding_quant or cfg.quant,
            "symmetric": cfg.symmetric if bits else None,
            "scale_search": (cfg.symmetric and cfg.scale_search) if bits else None,
            "layers": {str(i): q for i, q in sorted((cfg.layer_quant or {}).items())},
        },
        "max_context": max_context,
        "graph": {
            "file": MODEL_FILE,
            "kv_dtype": "float32",
            "kv_layout": "BNSH",
            "past_present_share_buffer": True,
        },
        "tokenizer": {"file": TOKENIZER_FILE, "special_tokens": special},
        "stop_token_ids": _stop_token_ids(ckpt, special),
        "chat_template": chat_template,
        "tool_format": cfg.tool_format or detect_format(chat_template),
        "generation": {k: ckpt.generation_config[k] for k in _GENERATION_KEYS
                       if k in ckpt.generation_config},
        "source": {"checkpoint": src},
        "created_by": "qwen-edge export",
    }
    if c.linear is not None:
        manifest["shapes"].update(hybrid_shapes(ckpt))
        manifest["graph"]["state_dtype"] = "float32"
        manifest["ignored_tensors"] = ignored_tensors(ckpt)
    return manifest


def hybrid_shapes(ckpt: Checkpoint | GGUFCheckpoint) -> dict[str, Any]:
    """The Qwen3.5 entries of the manifest's shapes: layer kinds and the per-layer states."""
    c = ckpt.config
    assert c.linear is not None
    lin = c.linear
    conv, rec = lin.conv_state_shape, lin.recurrent_state_shape
    return {
        "layer_types": list(c.layer_types),
        "partial_rotary_factor": c.partial_rotary_factor,
        "linear_attention": {
            "num_key_heads": lin.num_key_heads,
            "num_value_heads": lin.num_value_heads,
            "key_head_dim": lin.key_head_dim,
            "value_head_dim": lin.value_head_dim,
            "conv_kernel": lin.conv_kernel,
            "conv_state_shape": list(conv),
            "recurrent_state_shape": list(rec),
            # per linear layer, fp32: what one state snapshot costs is this x linear layers
            "state_nbytes_per_layer": 4 * (math.prod(conv) + math.prod(rec)),
        },
    }


def ignored_tensors(ckpt: Checkpoint | GGUFCheckpoint) -> dict[str, Any]:
    """What the export leaves out of the graph, with a reason (vision tower, MTP layer)."""
    reasons = {"model.visual.": "vision tower: qwen-edge exports the language model only",
               "mtp.": "multi-token-prediction layer: not part of the decoder graph"}
    out: dict[str, Any] = {}
    for prefix in ckpt.config.ignored_prefixes:
        names = [n for n in ckpt.names() if n.startswith(prefix)]
        if names:
            count = sum(math.prod(ckpt.shape(n)) for n in names)
            out[prefix.rstrip(".")] = {"tensors": len(names), "parameters": count,
                                       "reason": reasons.get(prefix, "not exported")}
    return out


def export_model(
    src: str | os.PathLike[str],
    out: str | os.PathLike[str],
    cfg: ExportConfig | None = None,
    *,
    force: bool = False,
    revision: str | None = None,
    show_progress: bool = False,
) -> ExportResult:
    """Export a Hugging Face Qwen2/Qwen2.5/Qwen3 checkpoint, or a GGUF file, to a model package.

    Args:
        src: a local checkpoint folder, a hub id (needs network), or a ``.gguf`` file
            (Qwen2/Qwen2.5/Qwen3 or Llama layout; needs the ``gguf`` extra).
        out: the package folder to write.
        cfg: quantization and context options (default: int4, block 32).
        force: replace ``out`` if it exists.
        revision: hub revision, for hub ids.
        show_progress: draw a progress bar on stderr.

    Returns:
        The package path, its size, the time taken and the process' peak RSS.

    Raises:
        CheckpointError, UnsupportedArchitectureError, HubUnavailableError, OutputExistsError.

    Example:
        >>> from qwen_edge.export import ExportConfig, export_model
        >>> export_model("ckpt/qwen2.5-0.5b", "pkg/", ExportConfig(quant="int4"))
    """
    cfg = cfg or ExportConfig()
    start = time.perf_counter()
    out = Path(out)
    check_output(out, force=force)
    ckpt: Checkpoint | GGUFCheckpoint
    if is_gguf(src):
        if revision is not None:
            msg = f"revision={revision!r}: only applies to hub ids, not to {src}"
            raise ConfigError(msg)
        ckpt = load_gguf(src)
    else:
        ckpt = load_checkpoint(src, revision=revision)
    ckpt.validate()
    layers = ckpt.config.num_hidden_layers
    if any(i >= layers for i in cfg.layer_quant or {}):
        msg = (f"layer_quant names layer {max(cfg.layer_quant or {})}, but {src} has {layers} "
               f"layers (0..{layers - 1})")
        raise ConfigError(msg)
    max_context = cfg.max_context or ckpt.config.max_position_embeddings
    tokenizer_json, chat_template = _tokenizer(ckpt)
    manifest = build_manifest(ckpt, cfg, max_context=max_context, tokenizer_json=tokenizer_json,
                              chat_template=chat_template, src=str(src))

    model = build_decoder(ckpt.config, ckpt.tensor, max_context=max_context)
    model = default_pipeline(cfg)(model).model

    bar = None
    if show_progress:
        from tqdm import tqdm

        bar = tqdm(total=len(model.graph.initializers), unit="tensor", desc="export",
                   file=sys.stderr)

    def progress(done: int, total: int) -> None:
        if bar is not None:
            bar.total = total
            bar.update(done - bar.n)

    try:
        path = write_package(model, out, manifest=manifest, tokenizer_json=tokenizer_json,
                             force=force, progress=progress)
    finally:
        if bar is not None:
            bar.close()
    nbytes = sum(f.stat().st_size for f in path.iterdir())
    return ExportResult(path=path, nbytes=nbytes, seconds=time.perf_counter() - start,
                        peak_rss_mb=_peak_rss_mb(), ignored=manifest.get("ignored_tensors", {}))
