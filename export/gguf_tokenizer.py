"""The tokenizer of a GGUF file, rebuilt as a Hugging Face ``tokenizer.json``.

GGUF keeps a byte-level BPE vocabulary as metadata (``tokenizer.ggml.tokens``, ``.merges``,
``.token_type``) and names its pre-tokenizer (``tokenizer.ggml.pre``) instead of storing the
regex; the regexes here are the ones the named models' own ``tokenizer.json`` files use.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from qwen_edge.errors import TokenizerError

__all__ = ["PRE_TOKENIZERS", "build_tokenizer", "tokenizer_config"]

# tokenizer.ggml.pre -> the Split regex its Hugging Face tokenizer.json uses (byte-level BPE).
_GPT2_REGEX = r"'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+"
PRE_TOKENIZERS: dict[str, tuple[str, ...]] = {
    "qwen2": ((r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}"
               r"| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"),),
    # SmolLM / SmolLM2: single digits first, then GPT-2's pattern
    "smollm": (r"\p{N}", _GPT2_REGEX),
    "gpt-2": (_GPT2_REGEX,),
    "default": (_GPT2_REGEX,),
    "llama-bpe": ((r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}"
                   r"| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"),),
}
_CONTROL, _USER_DEFINED = 3, 4  # tokenizer.ggml.token_type values of added tokens



def build_tokenizer(meta: Mapping[str, Any], *, source: str = "GGUF") -> Any:
    """A ``tokenizers.Tokenizer`` from GGUF tokenizer metadata (``tokenizer.ggml.model`` gpt2).

    Byte-level BPE: the pre-tokenizer regex is chosen by ``tokenizer.ggml.pre``; control and
    user-defined tokens become added tokens (control ones special) with their ids.

    Raises:
        TokenizerError: not a byte-level BPE vocabulary, or an unknown pre-tokenizer.
    """
    from tokenizers import (
        AddedToken,
        Regex,
        Tokenizer,
        decoders,
        models,
        pre_tokenizers,
        processors,
    )

    kind = meta.get("tokenizer.ggml.model")
    if kind != "gpt2":
        msg = (f"{source}: tokenizer.ggml.model={kind!r}; only byte-level BPE ('gpt2', as Qwen "
               "and SmolLM use) can be rebuilt")
        raise TokenizerError(msg)
    pre = str(meta.get("tokenizer.ggml.pre", "default"))
    if pre not in PRE_TOKENIZERS:
        msg = (f"{source}: tokenizer.ggml.pre={pre!r} is not supported; supported: "
               f"{', '.join(PRE_TOKENIZERS)}")
        raise TokenizerError(msg)
    tokens: list[str] = list(meta["tokenizer.ggml.tokens"])
    types: list[int] = list(meta.get("tokenizer.ggml.token_type") or [1] * len(tokens))
    merges = [tuple(m.split(" ", 1)) for m in meta.get("tokenizer.ggml.merges") or []]
    vocab = {tok: i for i, tok in enumerate(tokens)}
    if len(vocab) != len(tokens):
        raise TokenizerError(f"{source}: tokenizer.ggml.tokens has duplicate entries")
    tok = Tokenizer(models.BPE(vocab=vocab, merges=merges, fuse_unk=False, byte_fallback=False))
    splits = [pre_tokenizers.Split(Regex(p), behavior="isolated") for p in PRE_TOKENIZERS[pre]]
    if pre == "qwen2":
        from tokenizers import normalizers

        tok.normalizer = normalizers.NFC()
    tok.pre_tokenizer = pre_tokenizers.Sequence(
        [*splits, pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False)])
    tok.decoder = decoders.ByteLevel()
    bos = meta.get("tokenizer.ggml.bos_token_id")
    if meta.get("tokenizer.ggml.add_bos_token") and isinstance(bos, int):
        tok.post_processor = processors.TemplateProcessing(
            single=f"{tokens[bos]} $A", pair=f"{tokens[bos]} $A {tokens[bos]} $B",
            special_tokens=[(tokens[bos], bos)])
    else:
        tok.post_processor = processors.ByteLevel(trim_offsets=False)
    added = [AddedToken(tokens[i], special=types[i] == _CONTROL, normalized=False)
             for i in range(len(tokens)) if types[i] in (_CONTROL, _USER_DEFINED)]
    tok.add_tokens(added)
    return tok


def tokenizer_config(meta: Mapping[str, Any], template: str | None) -> dict[str, Any]:
    """tokenizer_config.json for transformers' PreTrainedTokenizerFast."""
    tokens = meta.get("tokenizer.ggml.tokens") or []

    def token(key: str) -> str | None:
        i = meta.get(f"tokenizer.ggml.{key}_token_id")
        return tokens[i] if isinstance(i, int) and 0 <= i < len(tokens) else None

    out: dict[str, Any] = {
        "tokenizer_class": "PreTrainedTokenizerFast",
        "bos_token": token("bos"),
        "eos_token": token("eos"),
        "pad_token": token("padding"),
        "unk_token": token("unknown"),
        "add_bos_token": bool(meta.get("tokenizer.ggml.add_bos_token", False)),
        "clean_up_tokenization_spaces": False,
    }
    if template is not None:
        out["chat_template"] = template
    return out
