"""The Qwen3.5 shapes of ``synth`` (published 0.8B / 2B / 4B, and tiny test shapes), and the
tensors a published Qwen3.5 checkpoint has beyond its language model (vision tower, MTP).

Kept apart from ``synth.py`` because the hybrid config nests a text_config and a vision_config.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from .hf_config import QwenConfig

__all__ = ["QWEN35", "extra_tensors"]

QWEN35: dict[str, dict[str, Any]] = {}

# Qwen3.5: the language model's text_config, key for key as in the published config.json.
# Sources, found with code search (each number in at least two of them): a C++ config-parser
# test quoting Qwen/Qwen3.5-0.8B's config.json ("text_config": hidden 1024, 24 layers, 8 / 2
# heads, intermediate 3584, linear 16 / 16 heads of 128, mrope_section [11, 11, 10],
# rope_theta 1e7, partial_rotary_factor 0.25, eos 248044, vocab 248320) and a brolm test
# fixture "compact mirror of Qwen/Qwen3.5-0.8B's config.json"; for 2B (hidden 2048, 24
# layers, 8 / 2 heads, intermediate 6144, tied) a Rust test "Qwen3.5-2B: hidden 2048, 8 heads,
# head_dim 256, 2 kv heads", a CUDA bench "Qwen3.5-2B: hidden 2048, intermediate 6144" and a
# sharded-model docstring listing 0.8B / 2B / 4B as tied; for 4B (hidden 2560, 32 layers,
# 16 / 4 heads, intermediate 9216, linear 16 key / 32 value heads, tied) a C++ test "the
# fields Qwen3.5-4B's config.json carries" and a maxtext test "guards the YAML against drift
# from Qwen/Qwen3.5-4B's config.json". Vision towers: 0.8B depth 12 / hidden 768 (the
# config-parser test above), 2B and 4B depth 24 / hidden 1024 (a VLA design note quoting the
# 2B config: "Vision Encoder depth 24, hidden 1024, projected to 2048"); their other vision
# numbers follow the Qwen3-VL family pattern (4x MLP, 64-dim heads) and only size the
# ignored tower.
_QWEN35_TEXT: dict[str, Any] = {
    "attention_bias": False,
    "attention_dropout": 0.0,
    "attn_output_gate": True,
    "bos_token_id": None,
    "dtype": "bfloat16",
    "eos_token_id": 248044,
    "full_attention_interval": 4,
    "head_dim": 256,
    "hidden_act": "silu",
    "initializer_range": 0.02,
    "linear_conv_kernel_dim": 4,
    "linear_key_head_dim": 128,
    "linear_value_head_dim": 128,
    "mamba_ssm_dtype": "float32",
    "max_position_embeddings": 262144,
    "model_type": "qwen3_5_text",
    "mtp_num_hidden_layers": 1,
    "mtp_use_dedicated_embeddings": False,
    "rms_norm_eps": 1e-06,
    "rope_parameters": {
        "mrope_interleaved": True,
        "mrope_section": [11, 11, 10],
        "partial_rotary_factor": 0.25,
        "rope_theta": 10000000,
        "rope_type": "default",
    },
    "tie_word_embeddings": True,
    "use_cache": True,
    "vocab_size": 248320,
}
_QWEN35_VISION: dict[str, Any] = {
    "hidden_act": "gelu_pytorch_tanh",
    "in_channels": 3,
    "initializer_range": 0.02,
    "model_type": "qwen3_5_vision",
    "num_position_embeddings": 2304,
    "patch_size": 16,
    "spatial_merge_size": 2,
    "temporal_patch_size": 2,
}


def _qwen35(text: dict[str, Any], vision: dict[str, Any], *, tied: bool = True) -> dict[str, Any]:
    """A Qwen3_5ForConditionalGeneration config.json: text_config + vision_config."""
    layers = text["num_hidden_layers"]
    text = {**_QWEN35_TEXT, **text, "tie_word_embeddings": tied}
    text.setdefault("layer_types", [
        "full_attention" if (i + 1) % 4 == 0 else "linear_attention" for i in range(layers)])
    return {
        "architectures": ["Qwen3_5ForConditionalGeneration"],
        "image_token_id": 248056,
        "model_type": "qwen3_5",
        "text_config": text,
        "tie_word_embeddings": tied,
        "transformers_version": "4.57.0.dev0",
        "video_token_id": 248057,
        "vision_config": {**_QWEN35_VISION, **vision},
        "vision_end_token_id": 248054,
        "vision_start_token_id": 248053,
    }


def _qwen35_text_only(conditional: dict[str, Any], **changes: Any) -> dict[str, Any]:
    """The Qwen3_5ForCausalLM form of a shape: the text config at the top level."""
    return {**conditional["text_config"], "architectures": ["Qwen3_5ForCausalLM"], **changes}


QWEN35["qwen3.5-0.8b"] = _qwen35(
    {"hidden_size": 1024, "intermediate_size": 3584, "num_hidden_layers": 24,
     "num_attention_heads": 8, "num_key_value_heads": 2, "linear_num_key_heads": 16,
     "linear_num_value_heads": 16},
    {"depth": 12, "hidden_size": 768, "intermediate_size": 3072, "num_heads": 12,
     "out_hidden_size": 1024},
)
QWEN35["qwen3.5-2b"] = _qwen35(
    {"hidden_size": 2048, "intermediate_size": 6144, "num_hidden_layers": 24,
     "num_attention_heads": 8, "num_key_value_heads": 2, "linear_num_key_heads": 16,
     "linear_num_value_heads": 16},
    {"depth": 24, "hidden_size": 1024, "intermediate_size": 4096, "num_heads": 16,
     "out_hidden_size": 2048},
)
QWEN35["qwen3.5-4b"] = _qwen35(
    {"hidden_size": 2560, "intermediate_size": 9216, "num_hidden_layers": 32,
     "num_attention_heads": 16, "num_key_value_heads": 4, "linear_num_key_heads": 16,
     "linear_num_value_heads": 32},
    {"depth": 24, "hidden_size": 1024, "intermediate_size": 4096, "num_heads": 16,
     "out_hidden_size": 2560},
)
# Tiny Qwen3.5 test shapes (the real 248,320-row vocabulary, everything else small):
# tiny-qwen3.5: ConditionalGeneration with a 1-block vision tower, tied, 6 layers (not a
#   multiple of 4: L L L F L L), GQA 4 q / 2 kv, 2 key heads sharing 4 value heads,
#   d_k 16 != d_v 24, head_dim 64 (rotary on 16 dims: the fewest GroupQueryAttention takes).
# tiny-qwen3.5-text: text-only CausalLM, untied, 5 layers (L L L F L), GQA ratio 1,
#   odd linear heads (3 key / 3 value).
# tiny-qwen3.5-odd: ConditionalGeneration untied, 4 layers, 1 key head for 3 value heads.
_TINY35_VISION = {"depth": 1, "hidden_size": 32, "intermediate_size": 64, "num_heads": 2,
                  "out_hidden_size": 64, "num_position_embeddings": 16, "patch_size": 4}
_TINY35 = {"hidden_size": 64, "head_dim": 64, "linear_key_head_dim": 16,
           "linear_value_head_dim": 24}
QWEN35["tiny-qwen3.5"] = _qwen35(
    {**_TINY35, "intermediate_size": 88, "num_hidden_layers": 6, "num_attention_heads": 4,
     "num_key_value_heads": 2, "linear_num_key_heads": 2, "linear_num_value_heads": 4},
    _TINY35_VISION)
QWEN35["tiny-qwen3.5-text"] = _qwen35_text_only(_qwen35(
    {**_TINY35, "intermediate_size": 72, "num_hidden_layers": 5, "num_attention_heads": 4,
     "num_key_value_heads": 4, "linear_num_key_heads": 3, "linear_num_value_heads": 3},
    _TINY35_VISION, tied=False))
QWEN35["tiny-qwen3.5-odd"] = _qwen35(
    {**_TINY35, "intermediate_size": 120, "num_hidden_layers": 4, "num_attention_heads": 2,
     "num_key_value_heads": 1, "linear_num_key_heads": 1, "linear_num_value_heads": 3},
    _TINY35_VISION, tied=False)


def extra_tensors(cfg: QwenConfig, raw: Mapping[str, Any]) -> dict[str, tuple[int, ...]]:
    """Tensors a published Qwen3.5 checkpoint has beyond the language model: the MTP layer and
    (ConditionalGeneration) the vision tower, as transformers names them. The export leaves
    them out; they are here so that a synth checkpoint looks like a real one."""
    if cfg.linear is None:
        return {}
    hidden, inter = cfg.hidden_size, cfg.intermediate_size
    q_dim, kv_dim = cfg.num_attention_heads * cfg.head_dim, cfg.num_key_value_heads * cfg.head_dim
    shapes: dict[str, tuple[int, ...]] = {
        "mtp.fc.weight": (hidden, 2 * hidden),
        "mtp.pre_fc_norm_embedding.weight": (hidden,),
        "mtp.pre_fc_norm_hidden.weight": (hidden,),
        "mtp.layers.0.input_layernorm.weight": (hidden,),
        "mtp.layers.0.self_attn.q_proj.weight": (2 * q_dim, hidden),
        "mtp.layers.0.self_attn.k_proj.weight": (kv_dim, hidden),
        "mtp.layers.0.self_attn.v_proj.weight": (kv_dim, hidden),
        "mtp.layers.0.self_attn.o_proj.weight": (hidden, q_dim),
        "mtp.layers.0.self_attn.q_norm.weight": (cfg.head_dim,),
        "mtp.layers.0.self_attn.k_norm.weight": (cfg.head_dim,),
        "mtp.layers.0.post_attention_layernorm.weight": (hidden,),
        "mtp.layers.0.mlp.gate_proj.weight": (inter, hidden),
        "mtp.layers.0.mlp.up_proj.weight": (inter, hidden),
        "mtp.layers.0.mlp.down_proj.weight": (hidden, inter),
        "mtp.norm.weight": (hidden,),
    }
    vision = raw.get("vision_config")
    if not isinstance(vision, Mapping):
        return shapes
    v, p = int(vision["hidden_size"]), "model.visual"
    merged = v * int(vision["spatial_merge_size"]) ** 2
    patch = int(vision["patch_size"])
    shapes[f"{p}.patch_embed.proj.weight"] = (v, int(vision["in_channels"]),
                                              int(vision["temporal_patch_size"]), patch, patch)
    shapes[f"{p}.patch_embed.proj.bias"] = (v,)
    shapes[f"{p}.pos_embed.weight"] = (int(vision["num_position_embeddings"]), v)
    for i in range(int(vision["depth"])):
        b = f"{p}.blocks.{i}"
        for norm in ("norm1", "norm2"):
            shapes[f"{b}.{norm}.weight"] = (v,)
            shapes[f"{b}.{norm}.bias"] = (v,)
        for layer, (out_f, in_f) in (("attn.qkv", (3 * v, v)), ("attn.proj", (v, v)),
                                     ("mlp.linear_fc1", (int(vision["intermediate_size"]), v)),
                                     ("mlp.linear_fc2", (v, int(vision["intermediate_size"])))):
            shapes[f"{b}.{layer}.weight"] = (out_f, in_f)
            shapes[f"{b}.{layer}.bias"] = (out_f,)
    shapes[f"{p}.merger.norm.weight"] = (v,)
    shapes[f"{p}.merger.norm.bias"] = (v,)
    shapes[f"{p}.merger.linear_fc1.weight"] = (merged, merged)
    shapes[f"{p}.merger.linear_fc1.bias"] = (merged,)
    shapes[f"{p}.merger.linear_fc2.weight"] = (int(vision["out_hidden_size"]), merged)
    shapes[f"{p}.merger.linear_fc2.bias"] = (int(vision["out_hidden_size"]),)
    return shapes
