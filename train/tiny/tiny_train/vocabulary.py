"""What the trainers draw from the tokenizer's vocabulary: words, word pieces, spelling ties.
"""

from __future__ import annotations

import numpy as np

from qwen_edge.tokenizer import Tokenizer


def vocabulary_words(tokenizer: Tokenizer) -> list[str]:
    """Plain ASCII words (3-12 letters) that are single tokens with a leading space."""
    words = set()
    for token in tokenizer.backend.get_vocab():
        if token.startswith("\u0120") and token[1:].isascii() and token[1:].isalpha() \
                and 3 <= len(token) - 1 <= 12:
            words.add(token[1:].lower())
    return sorted(words)


def vocabulary_pieces(tokenizer: Tokenizer) -> list[str]:
    """Lowercase ASCII word pieces (2-5 letters) that are tokens *without* a leading space:
    what the inside of an unfamiliar name is made of (" Sarajevo" -> " Sar", "aj", "evo")."""
    return sorted({t for t in tokenizer.backend.get_vocab()
                   if t.isascii() and t.isalpha() and t.islower() and 2 <= len(t) <= 5})

def spelling_groups(tokenizer: Tokenizer, active: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Groups and features of the spelling-tied embeddings (see ``model.py``).

    Active tokens that are the same ASCII word up to a leading space and letter case
    (`` Call``, ``call``, ``CALL``) form one group; features are [leading space, capital].
    """
    keys, groups, features = {}, np.empty(len(active), np.int64), np.zeros((len(active), 2))
    for i, token_id in enumerate(active.tolist()):
        token = tokenizer.backend.id_to_token(token_id) or ""
        space = token.startswith("\u0120")  # byte-level BPE's space
        word = token[1:] if space else token
        key = word.lower() if word.isascii() and word.isalpha() else token
        groups[i] = keys.setdefault(key, len(keys))
        features[i] = (space, word[:1].isupper())
    return groups, features


def spelling_pieces(tokenizer: Tokenizer, active: np.ndarray) -> np.ndarray:
    """(n_active, 3) rows of each token's bare spelling pieces: first, second, last.

    For an active token that is a space and an ASCII word which, written bare (as in a
    JSON value after its quote), is several tokens that are all active: `` staircase`` ->
    (``st``, ``air``, ``case``); `` Hob`` -> (``H``, ``ob``, ``ob``). Every other token,
    and every slot past a token's pieces, gets ``len(active)`` (no piece; ``model.py``).
    """
    row = {int(t): i for i, t in enumerate(active.tolist())}
    out = np.full((len(active), 3), len(active), np.int64)
    for i, token_id in enumerate(active.tolist()):
        token = tokenizer.backend.id_to_token(token_id) or ""
        word = token[1:]
        if not (token.startswith("\u0120") and word.isascii() and word.isalpha()):
            continue
        ids = tokenizer.backend.encode(word, add_special_tokens=False).ids
        if len(ids) < 2 or any(t not in row for t in ids):
            continue
        out[i] = (row[ids[0]], row[ids[1]], row[ids[-1]])
    return out
