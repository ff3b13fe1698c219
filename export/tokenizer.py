"""Build the exact Qwen2.5 / Qwen3 tokenizer from the BPE ranks that ship in ``dashscope``.

No hub access is needed: the PyPI package ``dashscope`` carries ``resources/qwen.tiktoken``,
the 151,643 byte-level BPE ranks every Qwen2/2.5/3 model uses. From them we derive the
``tokenizer.json`` the published checkpoints carry::

    qwen.tiktoken (base64 token, rank)  --_load_ranks-->  {bytes: rank}
        --_vocab_and_merges-->  vocab {byte-level str: id} + one merge per multi-byte token
        --build_qwen_tokenizer-->  tokenizers.Tokenizer
             NFC -> Split(PRETOKENIZE_REGEX, isolated) -> ByteLevel(use_regex=False)
             -> BPE -> added tokens 151643.. -> ByteLevel decoder

Each merge is the last step tiktoken takes when it encodes that token's own bytes, which
reproduces the published ``merges.txt`` and gives ids identical to ``tiktoken`` (the tests
check this). The one intended difference: the Hugging Face pipeline normalizes its input to
NFC first, as the published ``tokenizer.json`` does, and tiktoken does not.

The added tokens, their ids and ``special`` flags, and the chat templates (``qwen_edge/templates``)
mirror the ``tokenizer_config.json`` of Qwen/Qwen2.5-*-Instruct and Qwen/Qwen3-* on the hub.
"""

from __future__ import annotations

import base64
import functools
import importlib.util
import json
import os
from dataclasses import dataclass
from importlib.resources import files
from pathlib import Path
from typing import Any

from tokenizers import Tokenizer

from qwen_edge.errors import TokenizerError

__all__ = [
    "CHAT_TEMPLATES",
    "PRETOKENIZE_REGEX",
    "SPECIAL_TOKENS",
    "build_qwen_tokenizer",
    "write_tokenizer_files",
]

PRETOKENIZE_REGEX = (
    r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}"
    r"| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"
)
"""Qwen's pre-tokenization pattern (tiktoken's ``pat_str``; the Split regex of ``tokenizer.json``)."""

_NUM_RANKS = 151_643  # ids 0..151642 are BPE tokens; added tokens start here
_MODEL_MAX_LENGTH = 131_072
_INSTALL_HINT = 'pip install "qwen-edge[export]"'

# (content, id, special) exactly as in the published added_tokens_decoder. The tool, FIM and
# repo tokens are added tokens with special=false there: they are matched in raw text but kept
# by decode(skip_special_tokens=True).
_QWEN25_ADDED: tuple[tuple[str, int, bool], ...] = (
    ("<|endoftext|>", 151643, True),
    ("<|im_start|>", 151644, True),
    ("<|im_end|>", 151645, True),
    ("<|object_ref_start|>", 151646, True),
    ("<|object_ref_end|>", 151647, True),
    ("<|box_start|>", 151648, True),
    ("<|box_end|>", 151649, True),
    ("<|quad_start|>", 151650, True),
    ("<|quad_end|>", 151651, True),
    ("<|vision_start|>", 151652, True),
    ("<|vision_end|>", 151653, True),
    ("<|vision_pad|>", 151654, True),
    ("<|image_pad|>", 151655, True),
    ("<|video_pad|>", 151656, True),
    ("<tool_call>", 151657, False),
    ("</tool_call>", 151658, False),
    ("<|fim_prefix|>", 151659, False),
    ("<|fim_middle|>", 151660, False),
    ("<|fim_suffix|>", 151661, False),
    ("<|fim_pad|>", 151662, False),
    ("<|repo_name|>", 151663, False),
    ("<|file_sep|>", 151664, False),
)
_QWEN3_ADDED: tuple[tuple[str, int, bool], ...] = (
    *_QWEN25_ADDED,
    ("<tool_response>", 151665, False),
    ("</tool_response>", 151666, False),
    ("<think>", 151667, False),
    ("</think>", 151668, False),
)


@dataclass(frozen=True, slots=True, kw_only=True)
class _Variant:
    added_tokens: tuple[tuple[str, int, bool], ...]
    template_file: str


_VARIANTS: dict[str, _Variant] = {
    "qwen2.5": _Variant(added_tokens=_QWEN25_ADDED, template_file="qwen2_5.jinja"),
    "qwen3": _Variant(added_tokens=_QWEN3_ADDED, template_file="qwen3.jinja"),
}

SPECIAL_TOKENS: dict[str, dict[str, int]] = {
    name: {content: token_id for content, token_id, _ in spec.added_tokens}
    for name, spec in _VARIANTS.items()
}
"""Added tokens per variant, ``{content: id}`` in id order (special or not, as published)."""


def _read_template(file_name: str) -> str:
    # One copy, shipped with the runtime (qwen_edge/templates): the runtime renders prompts
    # for packages without a template, and the exporter writes the same text into packages.
    try:
        return (files("qwen_edge") / "templates" / file_name).read_text(encoding="utf-8")
    except FileNotFoundError as exc:
        msg = f"qwen_edge/templates/{file_name}: chat template missing; reinstall qwen-edge"
        raise TokenizerError(msg) from exc


CHAT_TEMPLATES: dict[str, str] = {
    name: _read_template(spec.template_file) for name, spec in _VARIANTS.items()
}
"""Jinja chat templates per variant, byte-identical to the published ``chat_template``."""


def _variant(variant: str) -> _Variant:
    try:
        return _VARIANTS[variant]
    except KeyError:
        allowed = ", ".join(repr(name) for name in _VARIANTS)
        msg = f"unknown tokenizer variant {variant!r}; choose one of {allowed}"
        raise TokenizerError(msg) from None


def _ranks_path() -> Path:
    spec = importlib.util.find_spec("dashscope")  # locate without importing its HTTP stack
    if spec is None or not spec.submodule_search_locations:
        msg = (
            f"the Qwen BPE ranks come from the dashscope package, which is missing; {_INSTALL_HINT}"
        )
        raise TokenizerError(msg)
    path = Path(next(iter(spec.submodule_search_locations))) / "resources" / "qwen.tiktoken"
    if not path.is_file():
        msg = f"{path}: not found in the installed dashscope; reinstall it ({_INSTALL_HINT})"
        raise TokenizerError(msg)
    return path


@functools.lru_cache(maxsize=1)
def _load_ranks() -> dict[bytes, int]:
    """Parse ``qwen.tiktoken`` into ``{token bytes: rank}`` (cached; do not mutate)."""
    path = _ranks_path()
    ranks: dict[bytes, int] = {}
    with path.open("rb") as handle:
        for line_number, line in enumerate(handle, start=1):
            if not line.strip():
                continue
            try:
                token, rank = line.split()
                ranks[base64.b64decode(token, validate=True)] = int(rank)
            except ValueError as exc:  # also binascii.Error
                msg = f"{path}:{line_number}: expected '<base64 token> <rank>'; reinstall dashscope"
                raise TokenizerError(msg) from exc
    if len(ranks) != _NUM_RANKS or set(ranks.values()) != set(range(_NUM_RANKS)):
        msg = f"{path}: expected ranks 0..{_NUM_RANKS - 1} once each; reinstall dashscope"
        raise TokenizerError(msg)
    return ranks


def _byte_level_alphabet() -> dict[int, str]:
    """GPT-2's byte -> printable character map used by the ByteLevel pre-tokenizer."""
    printable = [*range(ord("!"), ord("~") + 1), *range(ord("¡"), ord("¬") + 1)]
    printable += range(ord("®"), ord("ÿ") + 1)
    alphabet = {byte: chr(byte) for byte in printable}
    shifted = 0
    for byte in range(256):
        if byte not in alphabet:
            alphabet[byte] = chr(256 + shifted)
            shifted += 1
    return alphabet


def _last_merge(token: bytes, ranks: dict[bytes, int]) -> tuple[bytes, bytes]:
    """The two pieces tiktoken joins last when it encodes ``token`` on its own.

    Runs tiktoken's BPE loop (join the adjacent pair of lowest rank, leftmost first) on the
    token's bytes and stops when two pieces remain.
    """
    unmerged = len(ranks)  # larger than any rank
    parts = [token[i : i + 1] for i in range(len(token))]
    pair_ranks = [ranks.get(token[i : i + 2], unmerged) for i in range(len(token) - 1)]
    while len(parts) > 2:
        lowest = min(pair_ranks)
        if lowest == unmerged:
            msg = f"BPE rank file is inconsistent: token {token!r} cannot be built from its bytes"
            raise TokenizerError(msg)
        i = pair_ranks.index(lowest)  # leftmost on ties, as tiktoken
        parts[i] += parts.pop(i + 1)
        del pair_ranks[i]
        if i > 0:
            pair_ranks[i - 1] = ranks.get(parts[i - 1] + parts[i], unmerged)
        if i < len(pair_ranks):
            pair_ranks[i] = ranks.get(parts[i] + parts[i + 1], unmerged)
    return parts[0], parts[1]


@functools.lru_cache(maxsize=1)
def _vocab_and_merges() -> tuple[dict[str, int], list[list[str]]]:
    """Byte-level vocab and merges in rank order (cached; do not mutate)."""
    ranks = _load_ranks()
    alphabet = _byte_level_alphabet()
    to_unicode = str.maketrans({chr(byte): char for byte, char in alphabet.items()})

    def byte_level(token: bytes) -> str:
        return token.decode("latin-1").translate(to_unicode)

    vocab: dict[str, int] = {}
    merges: list[list[str]] = []
    for token, rank in sorted(ranks.items(), key=lambda item: item[1]):
        vocab[byte_level(token)] = rank
        if len(token) == 2:
            merges.append([alphabet[token[0]], alphabet[token[1]]])
        elif len(token) > 2:
            left, right = _last_merge(token, ranks)
            merges.append([byte_level(left), byte_level(right)])
    return vocab, merges


def _added_token(content: str, token_id: int, special: bool) -> dict[str, Any]:
    return {
        "id": token_id,
        "content": content,
        "single_word": False,
        "lstrip": False,
        "rstrip": False,
        "normalized": False,
        "special": special,
    }


def _tokenizer_json(spec: _Variant) -> dict[str, Any]:
    """The ``tokenizer.json`` document, field for field as the published checkpoints have it."""
    vocab, merges = _vocab_and_merges()
    byte_level = {"add_prefix_space": False, "trim_offsets": False, "use_regex": False}
    return {
        "version": "1.0",
        "truncation": None,
        "padding": None,
        "added_tokens": [_added_token(*entry) for entry in spec.added_tokens],
        "normalizer": {"type": "NFC"},
        "pre_tokenizer": {
            "type": "Sequence",
            "pretokenizers": [
                {
                    "type": "Split",
                    "pattern": {"Regex": PRETOKENIZE_REGEX},
                    "behavior": "Isolated",
                    "invert": False,
                },
                {"type": "ByteLevel", **byte_level},
            ],
        },
        "post_processor": {"type": "ByteLevel", **byte_level},
        "decoder": {"type": "ByteLevel", **byte_level},
        "model": {
            "type": "BPE",
            "dropout": None,
            "unk_token": None,
            "continuing_subword_prefix": "",
            "end_of_word_suffix": "",
            "fuse_unk": False,
            "byte_fallback": False,
            "ignore_merges": False,
            "vocab": vocab,
            "merges": merges,
        },
    }


def build_qwen_tokenizer(variant: str = "qwen2.5") -> Tokenizer:
    """Build the byte-level BPE tokenizer of Qwen2.5 or Qwen3 from dashscope's ranks.

    The ranks are parsed once per process; each call returns a new ``Tokenizer``.

    Args:
        variant: ``"qwen2.5"`` or ``"qwen3"``; they share the BPE and differ in added tokens.

    Returns:
        A tokenizer that encodes like the published ``tokenizer.json`` of that family.

    Raises:
        TokenizerError: the variant is unknown, or dashscope (the source of the ranks) is
            missing or its rank file is corrupt.

    Example:
        >>> tok = build_qwen_tokenizer("qwen3")
        >>> tok.encode("Hello world").ids
        [9707, 1879]
    """
    spec = _variant(variant)
    document = _tokenizer_json(spec)
    return Tokenizer.from_str(json.dumps(document, ensure_ascii=False))


def _tokenizer_config(variant: str, spec: _Variant) -> dict[str, Any]:
    """``tokenizer_config.json`` of the published instruct checkpoints (Qwen2TokenizerFast)."""
    added_tokens_decoder = {
        str(token_id): {
            "content": content,
            "lstrip": False,
            "normalized": False,
            "rstrip": False,
            "single_word": False,
            "special": special,
        }
        for content, token_id, special in spec.added_tokens
    }
    # <|im_start|> .. <|video_pad|>: the special tokens other than <|endoftext|>
    additional_special_tokens = [
        content for content, _, special in spec.added_tokens[1:] if special
    ]
    return {
        "add_bos_token": False,
        "add_prefix_space": False,
        "added_tokens_decoder": added_tokens_decoder,
        "additional_special_tokens": additional_special_tokens,
        "bos_token": None,
        "chat_template": CHAT_TEMPLATES[variant],
        "clean_up_tokenization_spaces": False,
        "eos_token": "<|im_end|>",
        "errors": "replace",
        "model_max_length": _MODEL_MAX_LENGTH,
        "pad_token": "<|endoftext|>",
        "split_special_tokens": False,
        "tokenizer_class": "Qwen2Tokenizer",
        "unk_token": None,
    }


def write_tokenizer_files(out_dir: str | os.PathLike[str], variant: str = "qwen2.5") -> None:
    """Write ``tokenizer.json`` and ``tokenizer_config.json`` of an instruct model.

    ``transformers.AutoTokenizer.from_pretrained(out_dir)`` loads the folder offline as a
    ``Qwen2TokenizerFast`` with the chat template, ``<|im_end|>`` as EOS and
    ``<|endoftext|>`` as padding. The folder is created if needed; existing files are replaced.

    Args:
        out_dir: destination folder.
        variant: ``"qwen2.5"`` or ``"qwen3"``.

    Raises:
        TokenizerError: the variant is unknown, dashscope is missing, or the folder cannot
            be written.

    Example:
        >>> write_tokenizer_files("out/qwen3-0.6b", variant="qwen3")
    """
    spec = _variant(variant)
    config = _tokenizer_config(variant, spec)
    out = Path(out_dir)
    try:
        out.mkdir(parents=True, exist_ok=True)  # before the build: fail fast on a bad path
        tokenizer = build_qwen_tokenizer(variant)
        (out / "tokenizer.json").write_text(tokenizer.to_str(pretty=True), encoding="utf-8")
        config_text = json.dumps(config, ensure_ascii=False, indent=2) + "\n"
        (out / "tokenizer_config.json").write_text(config_text, encoding="utf-8")
    except OSError as exc:
        msg = f"{out}: cannot write the tokenizer files ({exc.strerror or exc})"
        raise TokenizerError(msg) from exc
