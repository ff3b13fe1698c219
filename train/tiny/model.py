"""A Qwen2 decoder in plain PyTorch, shaped for training a tiny model on one CPU.

Numerically the same model as transformers' ``Qwen2ForCausalLM`` (tested against it in
``tests/test_tiny_training.py``), with two training-only shortcuts that change nothing at
inference:

- **Shared prefix.** Every example starts with the same system prompt and tool schemas
  (~800 tokens). ``forward_shared_prefix`` runs that prefix once per batch and lets every row
  attend to its keys and values, instead of repeating it in each row.
- **Active vocabulary.** Only the token ids that occur in the corpus get trainable
  embeddings; every other row of the (tied) embedding is zero, so its logit is exactly 0 and
  the full 151,936-way softmax is ``logsumexp(active logits, log(n_inactive))``: exact, at a
  fraction of the cost. ``full_state_dict`` writes the full-vocabulary checkpoint.

And one reparametrization, also invisible at inference:

- **Spelling-tied embeddings.** ``Lisbon`` in a request is the token `` Lisbon``; in a JSON
  argument it is bare (``"Lisbon"``), a different token id, or several (``L``, ``is``, ``bon``).
  A model trained from scratch sees too little text to learn that `` call``, ``call`` and
  ``Call`` are one word, so it cannot copy a word it did not memorize. With ``groups`` and
  ``features``, a token's embedding is ``base[group] + features @ shared + delta``: tokens
  that differ only by a leading space or case share ``base``; the leading space and the
  capital are two shared directions; ``delta`` (starting at zero) is the token's own part.
  The exported embedding is that sum, an ordinary (tied) embedding matrix.
- **Composed spelling.** A word that is one token after a space is often several without
  one (`` staircase`` in the request, ``st`` ``air`` ``case`` in ``"staircase"``), and a
  model trained from scratch cannot know that spelling for a word it never copied. With
  ``pieces`` (the rows of each token's bare pieces: first, second, last), the embedding of
  `` staircase`` also holds ``Σ_k W_k · e(piece_k)``, with three matrices ``W_k`` (starting
  at zero) shared by every token: the spelling is in the token itself, for unseen words too.
  Also summed into the exported matrix.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import torch
import torch.nn.functional as F
from torch import nn


@dataclass(frozen=True)
class TinyConfig:
    vocab_size: int = 151936
    hidden_size: int = 128
    intermediate_size: int = 512
    num_hidden_layers: int = 6
    num_attention_heads: int = 4
    num_key_value_heads: int = 2
    rope_theta: float = 1_000_000.0
    rms_norm_eps: float = 1e-6
    max_position_embeddings: int = 4096

    @property
    def head_dim(self) -> int:
        return self.hidden_size // self.num_attention_heads

    def hf_config(self) -> dict:
        """config.json of the equivalent ``Qwen2ForCausalLM`` (tied embeddings)."""
        d = asdict(self)
        return {
            "architectures": ["Qwen2ForCausalLM"], "model_type": "qwen2", **d,
            "hidden_act": "silu", "tie_word_embeddings": True, "attention_dropout": 0.0,
            "bos_token_id": 151643, "eos_token_id": 151645, "initializer_range": 0.02,
            "max_window_layers": d["num_hidden_layers"], "sliding_window": None,
            "use_sliding_window": False, "use_cache": True, "torch_dtype": "float32",
        }


def previous_token_biases(cfg: TinyConfig, horizon: int = 2048,
                          margin: float = 10.0) -> tuple[torch.Tensor, torch.Tensor]:
    """q and k biases (head_dim,) of a head that attends to the previous token, by RoPE alone.

    With zero q/k weights, ``q_m . k_n = sum_i A_i cos(w_i (m - n) - phi_i)`` over RoPE's
    frequency pairs: phases ``phi_i = w_i`` put every pair's peak at ``m - n = 1``; the
    amplitudes maximize the gap between that peak and every other offset up to ``horizon``
    (a small max-min problem, solved here by gradient ascent on a soft minimum), scaled so
    that the gap is ``margin`` nats after the 1/sqrt(head_dim) scaling.
    """
    half = cfg.head_dim // 2
    w = cfg.rope_theta ** (-torch.arange(half, dtype=torch.float64) / half)
    offsets = torch.arange(horizon, dtype=torch.float64)
    offsets = offsets[offsets != 1]
    gap = 1 - torch.cos(w[:, None] * (offsets - 1))  # peak minus score, per unit amplitude
    logits = torch.zeros(half, dtype=torch.float64, requires_grad=True)
    opt = torch.optim.Adam([logits], lr=0.05)
    for _ in range(400):
        soft_min = -0.01 * torch.logsumexp(-(torch.softmax(logits, 0) @ gap) / 0.01, 0)
        opt.zero_grad()
        (-soft_min).backward()
        opt.step()
    with torch.no_grad():
        share = torch.softmax(logits, 0)
        worst = float((share @ gap).min())
        amp = torch.sqrt(share * margin * math.sqrt(cfg.head_dim) / worst)
        bq = torch.cat([amp, torch.zeros(half, dtype=torch.float64)])
        bk = torch.cat([amp * torch.cos(w), amp * torch.sin(w)])
    return bq.float(), bk.float()


class RMSNorm(nn.Module):
    def __init__(self, dim: int, eps: float) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.ones(dim))
        self.eps = eps

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.weight * (x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + self.eps))


def rotary(cfg: TinyConfig, positions: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """cos, sin of shape (len, head_dim), transformers' rotate-half layout."""
    inv_freq = 1.0 / cfg.rope_theta ** (
        torch.arange(0, cfg.head_dim, 2, dtype=torch.float32) / cfg.head_dim)
    freqs = positions.float()[:, None] * inv_freq[None, :]
    emb = torch.cat([freqs, freqs], dim=-1)
    return emb.cos(), emb.sin()


def _rotate(x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
    half = x.shape[-1] // 2
    rotated = torch.cat([-x[..., half:], x[..., :half]], dim=-1)
    return x * cos + rotated * sin


class Attention(nn.Module):
    def __init__(self, cfg: TinyConfig) -> None:
        super().__init__()
        d, hd = cfg.hidden_size, cfg.head_dim
        self.cfg = cfg
        self.q_proj = nn.Linear(d, cfg.num_attention_heads * hd, bias=True)
        self.k_proj = nn.Linear(d, cfg.num_key_value_heads * hd, bias=True)
        self.v_proj = nn.Linear(d, cfg.num_key_value_heads * hd, bias=True)
        self.o_proj = nn.Linear(cfg.num_attention_heads * hd, d, bias=False)

    def qkv(self, x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor):
        b, t, _ = x.shape
        hd = self.cfg.head_dim
        q = self.q_proj(x).view(b, t, -1, hd).transpose(1, 2)
        k = self.k_proj(x).view(b, t, -1, hd).transpose(1, 2)
        v = self.v_proj(x).view(b, t, -1, hd).transpose(1, 2)
        return _rotate(q, cos, sin), _rotate(k, cos, sin), v

    def attend(self, q, k, v, mask) -> torch.Tensor:
        if mask is None:
            out = F.scaled_dot_product_attention(q, k, v, is_causal=True, enable_gqa=True)
        else:
            out = F.scaled_dot_product_attention(q, k, v, attn_mask=mask, enable_gqa=True)
        b, _, t, _ = out.shape
        return self.o_proj(out.transpose(1, 2).reshape(b, t, -1))


class MLP(nn.Module):
    def __init__(self, cfg: TinyConfig) -> None:
        super().__init__()
        self.gate_proj = nn.Linear(cfg.hidden_size, cfg.intermediate_size, bias=False)
        self.up_proj = nn.Linear(cfg.hidden_size, cfg.intermediate_size, bias=False)
        self.down_proj = nn.Linear(cfg.intermediate_size, cfg.hidden_size, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.down_proj(F.silu(self.gate_proj(x)) * self.up_proj(x))


class Layer(nn.Module):
    def __init__(self, cfg: TinyConfig) -> None:
        super().__init__()
        self.self_attn = Attention(cfg)
        self.mlp = MLP(cfg)
        self.input_layernorm = RMSNorm(cfg.hidden_size, cfg.rms_norm_eps)
        self.post_attention_layernorm = RMSNorm(cfg.hidden_size, cfg.rms_norm_eps)


class TinyQwen2(nn.Module):
    """Qwen2 with tied embeddings over an active vocabulary (see the module docstring).

    Args:
        cfg: the shape.
        active_ids: the token ids that get trainable embeddings, sorted, unique.
        groups: optional (n_active,) group index of each active id (spelling-tied embeddings);
            ids in one group share a base vector.
        features: optional (n_active, f) float features (leading space, capital), each a
            shared learned direction added to the embedding; needs ``groups``.
        pieces: optional (n_active, k) rows of each token's spelling pieces (composed
            spelling), ``n_active`` where a token has none; slot ``j`` adds
            ``W_j · e(piece)``, with ``e`` the embedding without this term.
    """

    def __init__(self, cfg: TinyConfig, active_ids: torch.Tensor,
                 groups: torch.Tensor | None = None,
                 features: torch.Tensor | None = None,
                 pieces: torch.Tensor | None = None) -> None:
        super().__init__()
        self.cfg = cfg
        active_ids = torch.as_tensor(active_ids, dtype=torch.long)
        if not torch.all(active_ids[1:] > active_ids[:-1]):
            raise ValueError("active_ids must be sorted and unique")
        # token id -> row of `embed` (inactive ids -> the last row, kept at zero)
        remap = torch.full((cfg.vocab_size,), len(active_ids), dtype=torch.long)
        remap[active_ids] = torch.arange(len(active_ids))
        self.register_buffer("active_ids", active_ids, persistent=False)
        self.register_buffer("remap", remap, persistent=False)
        # Tied embeddings bound every logit by |h| * |e| (|h| is fixed by the final RMSNorm):
        # at the usual std 0.02, a 128-wide row has norm ~0.23 and no token, least of all a
        # word seen a few times, can get a confident logit, so copying a word from the request
        # never pays off. std 0.1 (norm ~1.1) lifts that ceiling.
        n, d = len(active_ids), cfg.hidden_size
        self.untied = groups is None  # one embedding row per active id, nothing shared
        if groups is None:
            if features is not None:
                raise ValueError("features need groups")
            groups = torch.arange(n)
        if features is None:
            features = torch.zeros(n, 0)
        groups = torch.as_tensor(groups, dtype=torch.long)
        features = torch.as_tensor(features, dtype=torch.float32).reshape(n, -1)
        if groups.shape != (n,) or (n and int(groups.min()) < 0):
            raise ValueError("groups must be (n_active,) non-negative group indices")
        self.register_buffer("groups", groups, persistent=False)
        self.register_buffer("features", features, persistent=False)
        n_groups = int(groups.max()) + 1 if n else 0
        self.embed_base = nn.Parameter(torch.randn(n_groups, d) * 0.1)
        self.embed_shared = nn.Parameter(torch.randn(features.shape[1], d) * 0.1)
        self.embed_delta = nn.Parameter(torch.zeros(n, d)) if n_groups < n else None
        if pieces is not None:
            pieces = torch.as_tensor(pieces, dtype=torch.long)
            if pieces.ndim != 2 or pieces.shape[0] != n or (
                    pieces.numel() and (int(pieces.min()) < 0 or int(pieces.max()) > n)):
                raise ValueError("pieces must be (n_active, k) rows in [0, n_active]")
            spelled = torch.nonzero((pieces < n).any(dim=1)).flatten()
            self.register_buffer("spelled", spelled, persistent=False)  # rows that have pieces
            self.register_buffer("pieces", pieces[spelled], persistent=False)
            self.embed_compose = nn.Parameter(torch.zeros(pieces.shape[1], d, d))
        else:
            self.spelled = self.pieces = None
            self.embed_compose = None
        self.layers = nn.ModuleList(Layer(cfg) for _ in range(cfg.num_hidden_layers))
        self.norm = RMSNorm(cfg.hidden_size, cfg.rms_norm_eps)
        self.log_inactive = math.log(cfg.vocab_size - len(active_ids))
        for name, p in self.named_parameters():
            if name.endswith("proj.weight"):
                nn.init.normal_(p, std=0.02)
            elif name.endswith("proj.bias"):
                nn.init.zeros_(p)
        with torch.no_grad():  # residual branches start small (GPT-2 scaling)
            for layer in self.layers:
                layer.self_attn.o_proj.weight.mul_(1 / math.sqrt(2 * cfg.num_hidden_layers))
                layer.mlp.down_proj.weight.mul_(1 / math.sqrt(2 * cfg.num_hidden_layers))

    def init_previous_token_head(self, layer: int = 0) -> None:
        """Make query head 0 of ``layer`` attend to the previous token (see
        ``previous_token_biases``), with its key/value head's values 5x larger.

        An induction head (copy the token that followed an earlier occurrence of the current
        one) needs such a head below it; from scratch, the pair had not formed after 1,200
        steps. With this one in place, it forms in ~600 steps of ``train.induction_loss``.
        The head is an ordinary initialization: it trains on.
        Its key/value head is shared by query head 1 (GQA), whose keys are then positional
        too.
        """
        hd = self.cfg.head_dim
        attn = self.layers[layer].self_attn
        bq, bk = previous_token_biases(self.cfg)
        with torch.no_grad():
            attn.q_proj.weight[:hd] = 0
            attn.q_proj.bias[:hd] = bq
            attn.k_proj.weight[:hd] = 0
            attn.k_proj.bias[:hd] = bk
            attn.v_proj.weight[:hd] *= 5

    @property
    def embed(self) -> torch.Tensor:
        """The (n_active, d) embedding rows of the active ids."""
        if self.untied:
            table = self.embed_base
        else:
            table = self.embed_base[self.groups] + self.features @ self.embed_shared
            if self.embed_delta is not None:
                table = table + self.embed_delta
        if self.embed_compose is None:
            return table
        # only the spelled rows (a gather and three small matmuls, ~0.1 s forward and backward
        # at 24k of 57k rows; all rows through the padding row took 3x as long)
        padded = torch.cat([table, table.new_zeros(1, table.shape[1])])
        spelling = sum(padded[self.pieces[:, j]] @ w for j, w in enumerate(self.embed_compose))
        return table.index_add(0, self.spelled, spelling)

    def embed_tokens(self, *ids: torch.Tensor,
                     embed: torch.Tensor | None = None) -> tuple[torch.Tensor, ...]:
        """Embeddings of each of ``ids`` (the table is built once for all of them).

        ``embed``: ``self.embed`` if the caller already built it. With spelling ties that
        table is a sum over all active rows (~60 ms forward and backward at 51k rows), so a
        training step builds it once for the input embeddings and the loss.
        """
        embed = self.embed if embed is None else embed
        table = torch.cat([embed, embed.new_zeros(1, self.cfg.hidden_size)])
        return tuple(F.embedding(self.remap[x], table) for x in ids)

    def forward_shared_prefix(self, prefix: torch.Tensor, rows: torch.Tensor,
                              lengths: torch.Tensor,
                              embed: torch.Tensor | None = None) -> torch.Tensor:
        """Final hidden states (b, t, d) of ``rows`` (b, t), each continuing ``prefix`` (p,).

        Rows are right-padded; positions at or past ``lengths`` are garbage (mask them out
        of the loss). The prefix attends causally to itself, rows to the whole prefix and
        causally to themselves.
        """
        p, (b, t) = prefix.shape[0], rows.shape
        cos_p, sin_p = rotary(self.cfg, torch.arange(p))
        cos_r, sin_r = rotary(self.cfg, torch.arange(p, p + t))
        mask = torch.cat([torch.ones(t, p, dtype=torch.bool),
                          torch.ones(t, t, dtype=torch.bool).tril()], dim=1)
        xp, xr = self.embed_tokens(prefix, rows, embed=embed)
        xp = xp[None]
        for layer in self.layers:
            attn = layer.self_attn
            qp, kp, vp = attn.qkv(layer.input_layernorm(xp), cos_p, sin_p)
            qr, kr, vr = attn.qkv(layer.input_layernorm(xr), cos_r, sin_r)
            xp = xp + attn.attend(qp, kp, vp, None)
            k = torch.cat([kp.expand(b, -1, -1, -1), kr], dim=2)
            v = torch.cat([vp.expand(b, -1, -1, -1), vr], dim=2)
            xr = xr + attn.attend(qr, k, v, mask)
            xp = xp + layer.mlp(layer.post_attention_layernorm(xp))
            xr = xr + layer.mlp(layer.post_attention_layernorm(xr))
        del lengths  # padding only ever follows the real tokens; causality hides it
        return self.norm(xr)

    def hidden(self, ids: torch.Tensor, embed: torch.Tensor | None = None) -> torch.Tensor:
        """Final hidden states (b, t, d) of plain causal sequences ``ids`` (b, t)."""
        t = ids.shape[1]
        cos, sin = rotary(self.cfg, torch.arange(t))
        (x,) = self.embed_tokens(ids, embed=embed)
        for layer in self.layers:
            q, k, v = layer.self_attn.qkv(layer.input_layernorm(x), cos, sin)
            x = x + layer.self_attn.attend(q, k, v, None)
            x = x + layer.mlp(layer.post_attention_layernorm(x))
        return self.norm(x)

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        """Full-vocabulary logits (b, t, vocab) of plain causal sequences (for checks)."""
        return self.hidden(ids) @ self.full_embedding().T

    def loss(self, hidden: torch.Tensor, targets: torch.Tensor,
             embed: torch.Tensor | None = None, *, bf16: bool = False) -> torch.Tensor:
        """Mean cross-entropy over the full vocabulary of ``hidden`` (n, d) for ``targets``
        (n,), computed over the active rows plus the inactive rows' constant logit 0.
        ``embed``: ``self.embed`` if the caller already built it.

        ``bf16``: the (n, n_active) logit product in bfloat16 (float32 accumulation and
        softmax). It is most of a training step's arithmetic; on CPUs with AMX or
        AVX512-BF16, and compiled (``torch.compile`` fuses the softmax's passes over the
        logits), the loss's forward and backward run ~3x faster than float32 eager.
        """
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
            logits = (hidden @ (self.embed if embed is None else embed).T).float()
        lse = torch.logaddexp(torch.logsumexp(logits, dim=-1),
                              torch.tensor(self.log_inactive, dtype=logits.dtype))
        rows = self.remap[targets]
        inactive = rows == len(self.active_ids)  # an inactive target's logit is exactly 0
        picked = logits.gather(1, rows.clamp(max=len(self.active_ids) - 1)[:, None]).squeeze(1)
        return (lse - torch.where(inactive, torch.zeros_like(picked), picked)).mean()

    def full_embedding(self) -> torch.Tensor:
        full = self.embed.new_zeros(self.cfg.vocab_size, self.cfg.hidden_size)
        return full.index_copy(0, self.active_ids, self.embed)

    def full_state_dict(self) -> dict[str, torch.Tensor]:
        """Weights under transformers' Qwen2 names, full vocabulary, tied (no lm_head)."""
        out = {"model.embed_tokens.weight": self.full_embedding().detach()}
        for i, layer in enumerate(self.layers):
            for name, tensor in layer.state_dict().items():
                out[f"model.layers.{i}.{name}"] = tensor.detach()
        out["model.norm.weight"] = self.norm.weight.detach()
        return {k: v.contiguous().clone() for k, v in out.items()}
