"""What parent and children share: the engines, the context size, the prompts, RSS."""

from __future__ import annotations

from pathlib import Path

ENGINES = ("qwen-edge", "genai", "optimum", "llama")
FIRST_SPECIAL_ID = 151643  # <|endoftext|> in Qwen2.5 and Qwen3; ids at or above it are special
LLAMA_FTYPES = {"int4": ("q4_0", 2), "int8": ("q8_0", 7)}  # LLAMA_FTYPE_MOSTLY_Q4_0 / Q8_0
MAX_CONTEXT = 2048  # KV reservation for every engine (qwen-edge max_context, genai max_length,
#                     llama.cpp n_ctx)


# -- prompts and stats -------------------------------------------------------------------------

def prompt_ids(n: int, seed: int) -> list[int]:
    """``n`` random non-special token ids; a pure function of (n, seed) for every engine."""
    import numpy as np

    return np.random.default_rng([seed, n]).integers(0, FIRST_SPECIAL_ID, n).tolist()


def rss_mb(field: str) -> float:
    """``VmRSS`` (now) or ``VmHWM`` (peak) of this process, from /proc/self/status.

    (``getrusage().ru_maxrss`` would be wrong here: Linux carries it across ``execve``, so a
    child would report its parent's peak.)
    """
    with Path("/proc/self/status").open(encoding="ascii") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1]) / 1024
    return 0.0
