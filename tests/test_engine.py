"""qwen_edge.engine.Engine.forward: logits against transformers, chunked prefill and
``num_logits`` against one forward."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

import qwen_edge
from qwen_edge import engine as engine_module
from qwen_edge.errors import ConfigError, ContextLengthError, GenerationError


@pytest.fixture(scope="module")
def tiny(package: Callable[..., Path]) -> qwen_edge.Model:
    return qwen_edge.load(package("tiny-qwen2", "fp32"), threads=1)


IDS = np.asarray([9707, 11, 1879, 0, 576, 3974, 13876, 38835, 34208, 916, 279, 15678], np.int64)


def _all_logits(tiny: qwen_edge.Model, ids: np.ndarray) -> np.ndarray:
    return tiny.engine.forward(ids, tiny.engine.new_cache(64), num_logits=len(ids)).copy()


@pytest.mark.parity
def test_logits_match_transformers(tiny: qwen_edge.Model, checkpoint: Callable[[str], Path],
                                   ) -> None:
    torch = pytest.importorskip("torch")
    transformers = pytest.importorskip("transformers")
    hf = transformers.AutoModelForCausalLM.from_pretrained(
        checkpoint("tiny-qwen2"), dtype=torch.float32, attn_implementation="eager").eval()
    with torch.no_grad():
        reference = hf(torch.from_numpy(IDS[None])).logits[0].numpy()
    assert np.abs(_all_logits(tiny, IDS) - reference).max() <= 1e-4


def test_num_logits_are_the_last_rows_of_a_full_forward(tiny: qwen_edge.Model) -> None:
    full = _all_logits(tiny, IDS)
    for k in (1, 3):
        rows = tiny.engine.forward(IDS, tiny.engine.new_cache(64), num_logits=k)
        np.testing.assert_allclose(rows, full[-k:], atol=1e-5)


def test_incremental_and_chunked_prefill_equal_one_forward(tiny: qwen_edge.Model,
                                                           monkeypatch: pytest.MonkeyPatch,
                                                           ) -> None:
    full = _all_logits(tiny, IDS)
    cache = tiny.engine.new_cache(64)
    tiny.engine.forward(IDS[:5], cache)
    last = tiny.engine.forward(IDS[5:], cache, num_logits=len(IDS) - 5)
    assert cache.offset == len(IDS)
    np.testing.assert_allclose(last, full[5:], atol=1e-5)
    monkeypatch.setattr(engine_module, "PREFILL_CHUNK", 4)  # three chunks of at most 4
    chunked = tiny.engine.forward(IDS, tiny.engine.new_cache(64), num_logits=2)
    np.testing.assert_allclose(chunked, full[-2:], atol=1e-5)


def test_forward_errors(tiny: qwen_edge.Model) -> None:
    with pytest.raises(GenerationError, match="at least one token"):
        tiny.engine.forward(np.zeros(0, np.int64), tiny.engine.new_cache(8))
    with pytest.raises(ConfigError, match="num_logits"):
        tiny.engine.forward(IDS[:2], tiny.engine.new_cache(8), num_logits=3)
    with pytest.raises(ContextLengthError, match="do not fit"):
        tiny.engine.forward(IDS, tiny.engine.new_cache(8))
