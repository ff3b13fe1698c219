"""The Qwen2 / Qwen2.5 / Qwen3 decoder as one ONNX graph on onnxruntime's fused CPU operators.

``build_decoder`` emits the fp32 graph; quantization is a pass over it (``passes/``). The two
architectures differ by flags on ``QwenConfig`` (``attention_bias`` for Qwen2's q/k/v biases,
``qk_norm`` for Qwen3's per-head RMSNorm; set by ``checkpoint``'s architecture table), not by
subclasses.

Graph interface (the runtime binds these by name; see ``qwen_edge/engine.py``)::

    inputs   input_ids              int64   [batch, seq]
             seqlens_k              int32   [batch]        tokens in the cache after this step - 1
             total_sequence_length  int32   []             max over the batch of seqlens_k + 1
             num_logits_to_keep     int64   []             how many trailing positions get logits
             past_key_values.{i}.key|value   f32 [batch, kv_heads, max_context, head_dim]
    outputs  logits                 f32     [batch, num_logits_to_keep, vocab]
             present.{i}.key|value  f32     same buffer as past (bound to it with IOBinding)

One layer (names as in the graph)::

    residual ─┬─────────────────────────────────────────────┐
              │                                             ▼
    SkipSimplifiedLayerNorm ─► qkv MatMul(+bias) ─► [Qwen3: Split, per-head RMSNorm on q, k]
              ─► GroupQueryAttention(rotary fused, KV cache shared past/present)
              ─► o_proj ─► SkipSimplifiedLayerNorm(+residual) ─► gate, up
              ─► QuickGelu(alpha=1) = SiLU(gate) ─► Mul(up) ─► down_proj ─► next layer
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import onnx_ir as ir

from qwen_edge.errors import UnsupportedArchitectureError

from .graph import MS_DOMAIN, SOURCE_KEY, SOURCE_LOADER, TRANSPOSED_KEY, GraphBuilder
from .hf_config import SUPPORTED_ARCHITECTURES, QwenConfig

__all__ = ["ARCHITECTURES", "build_decoder", "rotary_caches"]

TensorLoader = Callable[[str], np.ndarray]
INT64_MAX = np.iinfo(np.int64).max


def rotary_caches(head_dim: int, max_context: int, theta: float) -> tuple[np.ndarray, np.ndarray]:
    """cos/sin tables [max_context, head_dim / 2] for the non-interleaved (rotate-half) RoPE.

    Computed in float64, so long positions are exact to fp32 rounding.
    """
    inv_freq = 1.0 / (theta ** (np.arange(0, head_dim, 2, dtype=np.float64) / head_dim))
    freqs = np.outer(np.arange(max_context, dtype=np.float64), inv_freq)
    return np.cos(freqs).astype(np.float32), np.sin(freqs).astype(np.float32)


def build_decoder(cfg: QwenConfig, load: TensorLoader, *, max_context: int) -> ir.Model:
    """Build the fp32 decoder graph; weights are lazy (``load(name)`` runs at write time).

    Args:
        cfg: the checkpoint's configuration.
        load: returns one checkpoint tensor as float32 by its Hugging Face name.
        max_context: the KV cache length the graph's rotary tables cover.

    Raises:
        UnsupportedArchitectureError: the architecture is not in ``SUPPORTED_ARCHITECTURES``.
    """
    builder = ARCHITECTURES.get(cfg.architecture)
    if builder is None or cfg.architecture not in SUPPORTED_ARCHITECTURES:
        msg = (
            f"{cfg.architecture} is not supported; supported architectures: "
            f"{', '.join(SUPPORTED_ARCHITECTURES)}"
        )
        raise UnsupportedArchitectureError(msg)
    return builder(cfg, load, max_context)


def _dense(cfg: QwenConfig, load: TensorLoader, max_context: int) -> ir.Model:
    return _DecoderBuilder(cfg, load, max_context).build()


def _hybrid(cfg: QwenConfig, load: TensorLoader, max_context: int) -> ir.Model:
    from .qwen35 import Qwen35Builder  # it subclasses _DecoderBuilder, defined below

    return Qwen35Builder(cfg, load, max_context).build()


ARCHITECTURES: dict[str, Callable[[QwenConfig, TensorLoader, int], ir.Model]] = {
    "Qwen2ForCausalLM": _dense,
    "Qwen3ForCausalLM": _dense,
    "Qwen3_5ForCausalLM": _hybrid,
    "Qwen3_5ForConditionalGeneration": _hybrid,
}


class _DecoderBuilder:
    def __init__(self, cfg: QwenConfig, load: TensorLoader, max_context: int) -> None:
        self.cfg = cfg
        self.load = load
        self.max_context = max_context
        self.g = GraphBuilder()

    # -- weights ----------------------------------------------------------------------------

    def _load(self, sources: tuple[str, ...]) -> np.ndarray:
        """One checkpoint tensor, or several stacked along the output dimension (fused q/k/v)."""
        if len(sources) == 1:
            return self.load(sources[0])
        return np.concatenate([self.load(s) for s in sources])

    def _weight(self, source: str | tuple[str, ...], shape: tuple[int, ...], *,
                name: str | None = None) -> ir.Value:
        sources = (source,) if isinstance(source, str) else source
        key = name or sources[0]
        return self.g.weight(key, lambda: self._load(sources), shape, metadata={SOURCE_KEY: key})

    def _weight_t(self, source: str | tuple[str, ...], out_features: int, in_features: int, *,
                  name: str | None = None) -> ir.Value:
        """A linear layer's weight, transposed to [in, out] for MatMul.

        The untransposed loader rides along (in memory) so that quantization reads the
        checkpoint's [out, in] layout directly instead of transposing twice.
        """
        sources = (source,) if isinstance(source, str) else source
        key = name or sources[0]
        value = self.g.weight(
            f"{key}.T",
            lambda: self._load(sources).T,
            (in_features, out_features),
            metadata={SOURCE_KEY: key, TRANSPOSED_KEY: "1"},
        )
        value.meta[SOURCE_LOADER] = lambda: self._load(sources)
        return value

    def _linear(
        self, x: ir.Value, source: str | tuple[str, ...], out_features: int, in_features: int, *,
        name: str, bias: str | tuple[str, ...] | None = None, weight_name: str | None = None,
    ) -> ir.Value:
        weight = self._weight_t(source, out_features, in_features, name=weight_name)
        y = self.g.op("MatMul", [x, weight], name=f"{name}/MatMul")
        if bias is not None:
            bias_name = f"{weight_name[: -len('.weight')]}.bias" if weight_name else None
            y = self.g.op("Add", [y, self._weight(bias, (out_features,), name=bias_name)],
                          name=f"{name}/Add")
        return y

    # -- graph ------------------------------------------------------------------------------

    def build(self) -> ir.Model:
        cfg, g = self.cfg, self.g
        kv_shape: list[int | str] = ["batch_size", cfg.num_key_value_heads, "max_sequence_length",
                                     cfg.head_dim]
        input_ids = g.input("input_ids", ir.DataType.INT64, ["batch_size", "sequence_length"])
        seqlens_k = g.input("seqlens_k", ir.DataType.INT32, ["batch_size"])
        total_len = g.input("total_sequence_length", ir.DataType.INT32, [])
        num_logits = g.input("num_logits_to_keep", ir.DataType.INT64, [])
        past = [
            (
                g.input(f"past_key_values.{i}.key", ir.DataType.FLOAT, kv_shape),
                g.input(f"past_key_values.{i}.value", ir.DataType.FLOAT, kv_shape),
            )
            for i in range(cfg.num_hidden_layers)
        ]
        cos, sin = rotary_caches(cfg.head_dim, self.max_context, cfg.rope_theta)
        cos_cache = g.const("cos_cache", cos)
        sin_cache = g.const("sin_cache", sin)

        embed = self._weight("model.embed_tokens.weight", (cfg.vocab_size, cfg.hidden_size))
        hidden = g.op("Gather", [embed, input_ids], {"axis": 0}, name="/model/embed_tokens/Gather")

        residual = hidden
        mlp_out: ir.Value | None = None
        presents = []
        for i in range(cfg.num_hidden_layers):
            normed, residual = self._norm(
                mlp_out, residual, f"model.layers.{i}.input_layernorm.weight",
                name=f"/model/layers.{i}/input_layernorm",
            )
            attn_out, present = self._attention(i, normed, past[i], seqlens_k, total_len,
                                                cos_cache, sin_cache)
            presents.append(present)
            normed, residual = self._norm(
                attn_out, residual, f"model.layers.{i}.post_attention_layernorm.weight",
                name=f"/model/layers.{i}/post_attention_layernorm",
            )
            mlp_out = self._mlp(i, normed)

        normed, _ = self._norm(mlp_out, residual, "model.norm.weight", name="/model/norm")
        g.output(self._logits(normed, num_logits, "model.embed_tokens.weight"), "logits")
        for i, (k, v) in enumerate(presents):
            g.output(k, f"present.{i}.key")
            g.output(v, f"present.{i}.value")
        return g.build(metadata={"qwen_edge.architecture": cfg.architecture})

    def _logits(self, normed: ir.Value, num_logits: ir.Value, embed: str) -> ir.Value:
        """lm_head over the last ``num_logits`` positions of the final norm's output."""
        cfg, g = self.cfg, self.g
        # Logits only for the last `num_logits_to_keep` positions: a long prefill must not
        # compute (and allocate) prompt_len x vocab floats.
        start = g.op("Neg", [g.op("Reshape", [num_logits, g.const("shape_1", np.array([1]))],
                                  name="/model/logits_to_keep/Reshape")],
                     name="/model/logits_to_keep/Neg")
        last = g.op(
            "Slice",
            [normed, start, g.const("int64_max_1", np.array([INT64_MAX])),
             g.const("axes_1", np.array([1]))],
            name="/model/logits_to_keep/Slice",
        )
        head = embed if cfg.tie_word_embeddings else "lm_head.weight"
        return self._linear(last, head, cfg.vocab_size, cfg.hidden_size, name="/lm_head")

    def _norm(
        self, x: ir.Value | None, residual: ir.Value, weight: str, *, name: str
    ) -> tuple[ir.Value, ir.Value]:
        """RMSNorm of ``x + residual``; returns (normed, new residual)."""
        eps = float(self.cfg.rms_norm_eps)
        gamma = self._weight(weight, (self.cfg.hidden_size,))
        if x is None:  # first layer: nothing to add yet
            normed = self.g.op(
                "SimplifiedLayerNormalization", [residual, gamma],
                {"axis": -1, "epsilon": eps, "stash_type": 1},
                name=f"{name}/SimplifiedLayerNormalization",
            )
            return normed, residual
        normed, _, _, summed = self.g.op_multi(
            "SkipSimplifiedLayerNormalization", [x, residual, gamma], {"epsilon": eps},
            name=f"{name}/SkipSimplifiedLayerNormalization", domain=MS_DOMAIN, num_outputs=4,
            unused=(1, 2),  # mean and inv_std_var: computing them costs ~1 % of a decode step
        )
        return normed, summed

    def _attention(
        self, i: int, x: ir.Value, past: tuple[ir.Value, ir.Value], seqlens_k: ir.Value,
        total_len: ir.Value, cos_cache: ir.Value, sin_cache: ir.Value,
    ) -> tuple[ir.Value, tuple[ir.Value, ir.Value]]:
        cfg, g = self.cfg, self.g
        p = f"model.layers.{i}.self_attn"
        name = f"/model/layers.{i}/attn"
        q_dim = cfg.num_attention_heads * cfg.head_dim
        kv_dim = cfg.num_key_value_heads * cfg.head_dim

        # q, k and v in one MatMul (one weight read, one kernel launch per layer for decode).
        qkv_dim = q_dim + 2 * kv_dim
        qkv = self._linear(
            x, tuple(f"{p}.{w}_proj.weight" for w in "qkv"), qkv_dim, cfg.hidden_size,
            name=f"{name}/qkv_proj", weight_name=f"{p}.qkv_proj.weight",
            bias=tuple(f"{p}.{w}_proj.bias" for w in "qkv") if cfg.attention_bias else None,
        )
        if cfg.qk_norm:  # Qwen3: RMSNorm over head_dim of each head, before RoPE
            q, k, v = g.op_multi("Split", [qkv, g.const(f"qkv_split_{qkv_dim}",
                                                        np.array([q_dim, kv_dim, kv_dim]))],
                                 {"axis": -1}, name=f"{name}/qkv_proj/Split", num_outputs=3)
            q = self._head_norm(q, f"{p}.q_norm.weight", name=f"{name}/q_norm")
            k = self._head_norm(k, f"{p}.k_norm.weight", name=f"{name}/k_norm")
            qkv_inputs: list[ir.Value | None] = [q, k, v]
        else:  # GroupQueryAttention takes the packed [q | k | v] projection directly
            qkv_inputs = [qkv, None, None]
        out, present_k, present_v = g.op_multi(
            "GroupQueryAttention",
            [*qkv_inputs, past[0], past[1], seqlens_k, total_len, cos_cache, sin_cache],
            {
                "num_heads": cfg.num_attention_heads,
                "kv_num_heads": cfg.num_key_value_heads,
                "do_rotary": 1,
                "rotary_interleaved": 0,
                "local_window_size": -1,
                "scale": float(1.0 / np.sqrt(cfg.head_dim)),
            },
            name=f"{name}/GroupQueryAttention", domain=MS_DOMAIN, num_outputs=3,
        )
        o = self._linear(out, f"{p}.o_proj.weight", cfg.hidden_size, q_dim, name=f"{name}/o_proj")
        return o, (present_k, present_v)

    def _head_norm(self, x: ir.Value, weight: str, *, name: str) -> ir.Value:
        g = self.g
        per_head = g.op("Reshape", [x, g.const("shape_heads", np.array([0, 0, -1, self.cfg.head_dim]))],
                        name=f"{name}/Reshape_in")
        normed = g.op(
            "SimplifiedLayerNormalization", [per_head, self._weight(weight, (self.cfg.head_dim,))],
            {"axis": -1, "epsilon": float(self.cfg.rms_norm_eps), "stash_type": 1},
            name=f"{name}/SimplifiedLayerNormalization",
        )
        return g.op("Reshape", [normed, g.const("shape_flat", np.array([0, 0, -1]))],
                    name=f"{name}/Reshape_out")

    def _mlp(self, i: int, x: ir.Value) -> ir.Value:
        cfg, g = self.cfg, self.g
        p = f"model.layers.{i}.mlp"
        name = f"/model/layers.{i}/mlp"
        gate = self._linear(x, f"{p}.gate_proj.weight", cfg.intermediate_size, cfg.hidden_size,
                            name=f"{name}/gate_proj")
        up = self._linear(x, f"{p}.up_proj.weight", cfg.intermediate_size, cfg.hidden_size,
                          name=f"{name}/up_proj")
        act = g.op("QuickGelu", [gate], {"alpha": 1.0}, name=f"{name}/act_fn/QuickGelu",
                   domain=MS_DOMAIN)
        h = g.op("Mul", [act, up], name=f"{name}/Mul")
        return self._linear(h, f"{p}.down_proj.weight", cfg.hidden_size, cfg.intermediate_size,
                            name=f"{name}/down_proj")
