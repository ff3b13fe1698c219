"""The Qwen3.5 hybrid decoder: Gated DeltaNet linear-attention layers and gated full attention.

``layer_types`` interleaves the two kinds (three linear layers, then one full, as published);
the MLP, the residual stream, the embedding and the head are Qwen3's (``qwen.py``). Every
RMSNorm but the gated one stores ``w`` for a scale of ``1 + w``: the 1 is folded into the
exported weight, so the graph uses onnxruntime's plain (Skip)SimplifiedLayerNormalization.

Graph interface: ``qwen.py``'s, with a KV cache for the full layers only, plus two fixed-size
states per linear layer (shapes in the manifest, ``qwen_edge/cache.py`` binds them in place)::

    inputs   past_key_values.{i}.key|value   f32 [batch, kv_heads, max_context, head_dim]  full i
             past_conv_state.{i}             f32 [batch, conv_dim, kernel - 1]            linear i
             past_recurrent_state.{i}        f32 [batch, v_heads, k_head_dim, v_head_dim] linear i
    outputs  present.{i}.key|value, present_conv_state.{i}, present_recurrent_state.{i}

A linear-attention layer (names as in the graph; x = the normed residual)::

    x ─► [in_proj_qkv | in_proj_z] MatMul ─► Split ─► qkv [B, T, conv_dim], z [B, T, v_dim]
    x ─► [in_proj_b | in_proj_a] MatMul (fp32, tiny) ─► Split ─► b, a
         LinearAttentionGate(a, dt_bias, -exp(A_log), b) ─► decay g, beta = sigmoid(b)
    qkv ─► Transpose ─► CausalConvWithState(silu, conv state) ─► Transpose ─► Split q, k, v
    q, k ─► per-head l2 norm (an RMSNorm with eps / d_k and weight 1 / sqrt(d_k))
    LinearAttention(gated_delta, recurrent state; q_num_heads = key heads, kv = value heads)
         ─► GatedRMSNorm(scale = norm.weight, gate = z, silu) ─► out_proj

A full-attention layer::

    x ─► [q | k | v | gate] MatMul (q_proj's per-head [q | gate] rows regrouped) ─► Split
    q, k ─► per-head RMSNorm(1 + w) ─► GroupQueryAttention(rotary on the first
         head_dim * partial_rotary_factor dims, KV cache shared past/present)
         ─► * sigmoid(gate) ─► o_proj

Text-only positions make Qwen3.5's interleaved mRoPE sections all read the same position, so
it equals plain rotate-half RoPE on the rotary dims (``tests/export/test_qwen35.py`` checks
this against transformers' rotary embedding).
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import onnx_ir as ir

from .graph import MS_DOMAIN, SOURCE_KEY, SOURCE_LOADER, TRANSPOSED_KEY
from .hf_config import QwenConfig
from .qwen import _DecoderBuilder, rotary_caches
from .qwen35_config import rotary_dim

__all__ = ["Qwen35Builder", "state_names"]

_L2_EPS = 1e-6  # transformers' l2norm epsilon (the FLA kernels' default)


def state_names(i: int) -> tuple[tuple[str, str], tuple[str, str]]:
    """((past, present) conv state, (past, present) recurrent state) names of linear layer i."""
    return ((f"past_conv_state.{i}", f"present_conv_state.{i}"),
            (f"past_recurrent_state.{i}", f"present_recurrent_state.{i}"))


class Qwen35Builder(_DecoderBuilder):
    """Builds the Qwen3.5 graph; reuses the dense builder's weights, norms, MLP and head."""

    def __init__(self, cfg: QwenConfig, load: Callable[[str], np.ndarray],
                 max_context: int) -> None:
        super().__init__(cfg, load, max_context)
        assert cfg.linear is not None
        self.lin = cfg.linear
        self.p = cfg.prefix  # "model." or "model.language_model."

    # -- weights ----------------------------------------------------------------------------

    def _custom_t(self, key: str, loader: Callable[[], np.ndarray], out_features: int,
                  in_features: int, *, quantize: bool = True) -> ir.Value:
        """A linear weight [out, in] built by ``loader``, stored transposed for MatMul.

        ``quantize=False`` leaves it out of QuantizeMatMulNBits (the pass only touches weights
        marked transposed-from-a-checkpoint).
        """
        meta = {SOURCE_KEY: key, TRANSPOSED_KEY: "1"} if quantize else {SOURCE_KEY: key}
        value = self.g.weight(f"{key}.T", lambda: loader().T, (in_features, out_features),
                              metadata=meta)
        if quantize:
            value.meta[SOURCE_LOADER] = loader
        return value

    def _matmul(self, x: ir.Value, key: str, loader: Callable[[], np.ndarray],
                out_features: int, in_features: int, *, name: str,
                quantize: bool = True) -> ir.Value:
        weight = self._custom_t(key, loader, out_features, in_features, quantize=quantize)
        return self.g.op("MatMul", [x, weight], name=f"{name}/MatMul")

    def _offset(self, source: str, size: int) -> ir.Value:
        """An RMSNorm weight stored as an offset: the exported value is 1 + w."""
        return self.g.weight(f"{source}+1", lambda: 1.0 + self.load(source), (size,),
                             metadata={SOURCE_KEY: source})

    # -- graph ------------------------------------------------------------------------------

    def build(self) -> ir.Model:
        cfg, g, lin, p = self.cfg, self.g, self.lin, self.p
        kv_shape: list[int | str] = ["batch_size", cfg.num_key_value_heads, "max_sequence_length",
                                     cfg.head_dim]
        input_ids = g.input("input_ids", ir.DataType.INT64, ["batch_size", "sequence_length"])
        seqlens_k = g.input("seqlens_k", ir.DataType.INT32, ["batch_size"])
        total_len = g.input("total_sequence_length", ir.DataType.INT32, [])
        num_logits = g.input("num_logits_to_keep", ir.DataType.INT64, [])
        past: dict[int, tuple[ir.Value, ...]] = {}
        for i, kind in enumerate(cfg.layer_types):
            if kind == "full_attention":
                past[i] = (g.input(f"past_key_values.{i}.key", ir.DataType.FLOAT, kv_shape),
                           g.input(f"past_key_values.{i}.value", ir.DataType.FLOAT, kv_shape))
            else:
                (conv_in, _), (rec_in, _) = state_names(i)
                past[i] = (
                    g.input(conv_in, ir.DataType.FLOAT, ["batch_size", *lin.conv_state_shape[1:]]),
                    g.input(rec_in, ir.DataType.FLOAT,
                            ["batch_size", *lin.recurrent_state_shape[1:]]),
                )
        cos, sin = rotary_caches(rotary_dim(cfg), self.max_context, cfg.rope_theta)
        cos_cache, sin_cache = g.const("cos_cache", cos), g.const("sin_cache", sin)

        embed_name = f"{p}embed_tokens.weight"
        embed = self._weight(embed_name, (cfg.vocab_size, cfg.hidden_size))
        hidden = g.op("Gather", [embed, input_ids], {"axis": 0}, name="/model/embed_tokens/Gather")

        residual = hidden
        mlp_out: ir.Value | None = None
        outputs: list[tuple[ir.Value, str]] = []
        for i, kind in enumerate(cfg.layer_types):
            normed, residual = self._offset_norm(
                mlp_out, residual, f"{p}layers.{i}.input_layernorm.weight",
                name=f"/model/layers.{i}/input_layernorm")
            if kind == "full_attention":
                attn_out, (k, v) = self._gated_attention(i, normed, past[i], seqlens_k, total_len,
                                                         cos_cache, sin_cache)
                outputs += [(k, f"present.{i}.key"), (v, f"present.{i}.value")]
            else:
                attn_out, (conv, rec) = self._delta_net(i, normed, past[i])
                (_, conv_name), (_, rec_name) = state_names(i)
                outputs += [(conv, conv_name), (rec, rec_name)]
            normed, residual = self._offset_norm(
                attn_out, residual, f"{p}layers.{i}.post_attention_layernorm.weight",
                name=f"/model/layers.{i}/post_attention_layernorm")
            mlp_out = self._mlp_at(f"{p}layers.{i}.mlp", i, normed)

        normed, _ = self._offset_norm(mlp_out, residual, f"{p}norm.weight", name="/model/norm")
        g.output(self._logits(normed, num_logits, embed_name), "logits")
        for value, name in outputs:
            g.output(value, name)
        return g.build(metadata={"qwen_edge.architecture": cfg.architecture})

    def _offset_norm(self, x: ir.Value | None, residual: ir.Value, weight: str, *,
                     name: str) -> tuple[ir.Value, ir.Value]:
        """RMSNorm(1 + w) of ``x + residual``; returns (normed, new residual)."""
        eps = float(self.cfg.rms_norm_eps)
        gamma = self._offset(weight, self.cfg.hidden_size)
        if x is None:
            normed = self.g.op("SimplifiedLayerNormalization", [residual, gamma],
                               {"axis": -1, "epsilon": eps, "stash_type": 1},
                               name=f"{name}/SimplifiedLayerNormalization")
            return normed, residual
        normed, _, _, summed = self.g.op_multi(
            "SkipSimplifiedLayerNormalization", [x, residual, gamma], {"epsilon": eps},
            name=f"{name}/SkipSimplifiedLayerNormalization", domain=MS_DOMAIN, num_outputs=4,
            unused=(1, 2))
        return normed, summed

    def _mlp_at(self, prefix: str, i: int, x: ir.Value) -> ir.Value:
        cfg, g = self.cfg, self.g
        name = f"/model/layers.{i}/mlp"
        gate = self._linear(x, f"{prefix}.gate_proj.weight", cfg.intermediate_size,
                            cfg.hidden_size, name=f"{name}/gate_proj")
        up = self._linear(x, f"{prefix}.up_proj.weight", cfg.intermediate_size, cfg.hidden_size,
                          name=f"{name}/up_proj")
        act = g.op("QuickGelu", [gate], {"alpha": 1.0}, name=f"{name}/act_fn/QuickGelu",
                   domain=MS_DOMAIN)
        h = g.op("Mul", [act, up], name=f"{name}/Mul")
        return self._linear(h, f"{prefix}.down_proj.weight", cfg.hidden_size,
                            cfg.intermediate_size, name=f"{name}/down_proj")

    def _per_head_norm(self, x: ir.Value, head_dim: int, weight: ir.Value, eps: float, *,
                       name: str) -> ir.Value:
        g = self.g
        heads = g.op("Reshape", [x, g.const(f"shape_heads_{head_dim}",
                                            np.array([0, 0, -1, head_dim]))],
                     name=f"{name}/Reshape_in")
        normed = g.op("SimplifiedLayerNormalization", [heads, weight],
                      {"axis": -1, "epsilon": eps, "stash_type": 1},
                      name=f"{name}/SimplifiedLayerNormalization")
        return g.op("Reshape", [normed, g.const("shape_flat", np.array([0, 0, -1]))],
                    name=f"{name}/Reshape_out")

    def _gated_attention(
        self, i: int, x: ir.Value, past: tuple[ir.Value, ...], seqlens_k: ir.Value,
        total_len: ir.Value, cos_cache: ir.Value, sin_cache: ir.Value,
    ) -> tuple[ir.Value, tuple[ir.Value, ir.Value]]:
        cfg, g = self.cfg, self.g
        a = f"{self.p}layers.{i}.self_attn"
        name = f"/model/layers.{i}/attn"
        heads, hd = cfg.num_attention_heads, cfg.head_dim
        q_dim, kv_dim = heads * hd, cfg.num_key_value_heads * hd

        def qkvg() -> np.ndarray:
            # q_proj rows are [q(head 0) | gate(head 0) | q(head 1) | ...]: regroup.
            qg = self.load(f"{a}.q_proj.weight").reshape(heads, 2, hd, cfg.hidden_size)
            return np.concatenate([qg[:, 0].reshape(q_dim, -1), self.load(f"{a}.k_proj.weight"),
                                   self.load(f"{a}.v_proj.weight"), qg[:, 1].reshape(q_dim, -1)])

        fused = self._matmul(x, f"{a}.qkvg_proj.weight", qkvg, 2 * q_dim + 2 * kv_dim,
                             cfg.hidden_size, name=f"{name}/qkvg_proj")
        q, k, v, gate = g.op_multi(
            "Split", [fused, g.const(f"qkvg_split_{q_dim}_{kv_dim}",
                                     np.array([q_dim, kv_dim, kv_dim, q_dim]))],
            {"axis": -1}, name=f"{name}/qkvg_proj/Split", num_outputs=4)
        eps = float(cfg.rms_norm_eps)
        q = self._per_head_norm(q, hd, self._offset(f"{a}.q_norm.weight", hd), eps,
                                name=f"{name}/q_norm")
        k = self._per_head_norm(k, hd, self._offset(f"{a}.k_norm.weight", hd), eps,
                                name=f"{name}/k_norm")
        out, present_k, present_v = g.op_multi(
            "GroupQueryAttention",
            [q, k, v, past[0], past[1], seqlens_k, total_len, cos_cache, sin_cache],
            {"num_heads": heads, "kv_num_heads": cfg.num_key_value_heads, "do_rotary": 1,
             "rotary_interleaved": 0, "local_window_size": -1,
             "scale": float(1.0 / np.sqrt(hd))},
            name=f"{name}/GroupQueryAttention", domain=MS_DOMAIN, num_outputs=3)
        gated = g.op("Mul", [out, g.op("Sigmoid", [gate], name=f"{name}/gate/Sigmoid")],
                     name=f"{name}/gate/Mul")
        o = self._linear(gated, f"{a}.o_proj.weight", cfg.hidden_size, q_dim,
                         name=f"{name}/o_proj")
        return o, (present_k, present_v)

    def _delta_net(self, i: int, x: ir.Value, past: tuple[ir.Value, ...],
                   ) -> tuple[ir.Value, tuple[ir.Value, ir.Value]]:
        cfg, g, lin = self.cfg, self.g, self.lin
        a = f"{self.p}layers.{i}.linear_attn"
        name = f"/model/layers.{i}/linear_attn"
        hidden, heads_v = cfg.hidden_size, lin.num_value_heads

        def qkvz() -> np.ndarray:
            return np.concatenate([self.load(f"{a}.in_proj_qkv.weight"),
                                   self.load(f"{a}.in_proj_z.weight")])

        def ba() -> np.ndarray:
            return np.concatenate([self.load(f"{a}.in_proj_b.weight"),
                                   self.load(f"{a}.in_proj_a.weight")])

        fused = self._matmul(x, f"{a}.in_proj_qkvz.weight", qkvz, lin.conv_dim + lin.value_dim,
                             hidden, name=f"{name}/qkvz_proj")
        qkv, z = g.op_multi("Split", [fused, g.const(f"qkvz_split_{lin.conv_dim}",
                                                     np.array([lin.conv_dim, lin.value_dim]))],
                            {"axis": -1}, name=f"{name}/qkvz_proj/Split", num_outputs=2)
        # The decay and update-rate gates drive an exponential recurrence and are ~0.1 % of the
        # weights: they stay fp32 (as onnxruntime-genai's builder keeps them).
        gates = self._matmul(x, f"{a}.in_proj_ba.weight", ba, 2 * heads_v, hidden,
                             name=f"{name}/ba_proj", quantize=False)
        b, a_gate = g.op_multi("Split", [gates, g.const(f"ba_split_{heads_v}",
                                                        np.array([heads_v, heads_v]))],
                               {"axis": -1}, name=f"{name}/ba_proj/Split", num_outputs=2)
        dt_bias = self.g.weight(f"{a}.dt_bias", lambda: self.load(f"{a}.dt_bias"), (heads_v,),
                                metadata={SOURCE_KEY: f"{a}.dt_bias"})
        decay_scale = self.g.weight(f"{a}.neg_exp_A", lambda: -np.exp(self.load(f"{a}.A_log")),
                                    (heads_v,), metadata={SOURCE_KEY: f"{a}.A_log"})
        decay, beta = g.op_multi("LinearAttentionGate", [a_gate, dt_bias, decay_scale, b],
                                 name=f"{name}/LinearAttentionGate", domain=MS_DOMAIN,
                                 num_outputs=2)

        conv_w = self._weight(f"{a}.conv1d.weight", (lin.conv_dim, 1, lin.conv_kernel))
        channels_first = g.op("Transpose", [qkv], {"perm": [0, 2, 1]},
                              name=f"{name}/conv_in/Transpose")
        conv, present_conv = g.op_multi(
            "CausalConvWithState", [channels_first, conv_w, None, past[0]],
            {"activation": "silu", "ndim": 1}, name=f"{name}/CausalConvWithState",
            domain=MS_DOMAIN, num_outputs=2)
        mixed = g.op("Transpose", [conv], {"perm": [0, 2, 1]}, name=f"{name}/conv_out/Transpose")
        q, k, v = g.op_multi(
            "Split", [mixed, g.const(f"qkv_split_{lin.key_dim}_{lin.value_dim}",
                                     np.array([lin.key_dim, lin.key_dim, lin.value_dim]))],
            {"axis": -1}, name=f"{name}/qkv/Split", num_outputs=3)
        # l2norm(x) = x / sqrt(sum(x^2) + eps) = RMSNorm(x; eps / d_k) / sqrt(d_k), exactly.
        dk = lin.key_head_dim
        l2_weight = g.const(f"l2_weight_{dk}", np.full(dk, 1.0 / np.sqrt(dk), np.float32))
        q = self._per_head_norm(q, dk, l2_weight, _L2_EPS / dk, name=f"{name}/q_l2norm")
        k = self._per_head_norm(k, dk, l2_weight, _L2_EPS / dk, name=f"{name}/k_l2norm")
        core, present_rec = g.op_multi(
            "LinearAttention", [q, k, v, past[1], decay, beta],
            {"q_num_heads": lin.num_key_heads, "kv_num_heads": heads_v,
             "update_rule": "gated_delta", "scale": float(1.0 / np.sqrt(dk))},
            name=f"{name}/LinearAttention", domain=MS_DOMAIN, num_outputs=2)
        norm_w = self._weight(f"{a}.norm.weight", (lin.value_head_dim,))
        normed = g.op("GatedRMSNorm", [core, norm_w, z],
                      {"activation": "silu", "epsilon": float(cfg.rms_norm_eps)},
                      name=f"{name}/norm/GatedRMSNorm", domain=MS_DOMAIN)
        out = self._linear(normed, f"{a}.out_proj.weight", hidden, lin.value_dim,
                           name=f"{name}/out_proj")
        return out, (present_conv, present_rec)
