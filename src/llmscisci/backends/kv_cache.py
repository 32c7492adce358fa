"""KV caches for batched generation over prompts that share a long prefix.

Two pieces, used by `LocalBackend`:

- `GrowingLayer`: a cache layer whose keys and values live in buffers preallocated for the whole
  generation, so a decoding step writes one slot per layer. (transformers' DynamicLayer concatenates,
  i.e. copies, each layer's whole cache at every step, which dominates batched decoding on a CPU.)
- Shared-prefix ("cascade") attention: the prefix's keys and values are stored ONCE (batch 1), and
  each row's cache holds only its own tokens. A registered attention function scores every row's
  queries against the shared prefix in one matrix product (reading the prefix once per step instead
  of once per row) and against the row's own tokens, then takes one softmax over both. It is active
  only inside `shared_prefix_attention(...)`; anywhere else the same name falls back to PyTorch SDPA.

Layout of a batch with a shared prefix of P tokens: [prefix][pads][suffix][generated]; the pads are
masked out and transformers derives position ids from the cumulative attention mask, so every row's
suffix continues at position P exactly as it would alone.
"""

from __future__ import annotations

import contextlib
import contextvars

import torch
from transformers import AttentionInterface, DynamicCache
from transformers.cache_utils import DynamicLayer
from transformers.integrations.sdpa_attention import sdpa_attention_forward
from transformers.masking_utils import AttentionMaskInterface, sdpa_mask

ATTN_NAME = "llmscisci_shared_prefix"
_PREFIX_KV: contextvars.ContextVar[list | None] = contextvars.ContextVar("llmscisci_prefix_kv", default=None)


class GrowingLayer(DynamicLayer):
    """A KV-cache layer in buffers preallocated for `capacity` tokens (doubled if ever outgrown).

    With `shared_len` > 0 the first `shared_len` positions are the shared prefix, which this layer does
    not hold: it reports them in `get_seq_length` (mask sizes, positions) but returns only the row's
    own keys and values, which the shared-prefix attention function completes with the prefix."""

    def __init__(self, capacity: int, n_rows: int, keys=None, values=None, shared_len: int = 0):
        super().__init__()
        self._capacity, self._rows, self._n = capacity, n_rows, 0
        self._shared = shared_len
        self._k = self._v = None
        if keys is not None:
            self._allocate(keys, values)
            n = keys.shape[-2]
            self._k[:, :, :n] = keys  # broadcasts a batch-1 prefix over all rows
            self._v[:, :, :n] = values
            self._set_length(n)

    def _allocate(self, keys, values) -> None:
        h = keys.shape[1]
        self._k = keys.new_empty((self._rows, h, self._capacity, keys.shape[-1]))
        self._v = values.new_empty((self._rows, h, self._capacity, values.shape[-1]))
        self.device = keys.device
        self.is_initialized = True

    def place_rows(self, parts: list, width: int) -> None:
        """Fill the first `width` positions from per-row (keys, values) of shape (1, H, L, D),
        right-aligned, zeros before them (masked pads: zeros keep the products finite)."""
        first = next(((k, v) for k, v in parts if k is not None), None)
        if first is None:
            return
        if self._k is None:
            self._allocate(*first)
        for r, (k, v) in enumerate(parts):
            n = 0 if k is None else k.shape[2]
            self._k[r, :, : width - n].zero_()
            self._v[r, :, : width - n].zero_()
            if n:
                self._k[r, :, width - n : width] = k[0]
                self._v[r, :, width - n : width] = v[0]
        self._set_length(width)

    def _set_length(self, n: int) -> None:
        self._n = n
        self.keys, self.values = self._k[:, :, :n], self._v[:, :, :n]

    def lazy_initialization(self, key_states, value_states) -> None:
        self._allocate(key_states, value_states)

    def update(self, key_states, value_states, *args, **kwargs):
        if self._k is None:
            self._allocate(key_states, value_states)
        m = key_states.shape[-2]
        if self._n + m > self._k.shape[2]:  # outgrew the estimate: double the buffers
            extra = max(m, self._k.shape[2])
            grow_k = self._k.new_empty(self._k.shape[:2] + (extra,) + self._k.shape[3:])
            grow_v = self._v.new_empty(self._v.shape[:2] + (extra,) + self._v.shape[3:])
            self._k, self._v = torch.cat([self._k, grow_k], 2), torch.cat([self._v, grow_v], 2)
        self._k[:, :, self._n : self._n + m] = key_states
        self._v[:, :, self._n : self._n + m] = value_states
        self._set_length(self._n + m)
        return self.keys, self.values

    def get_seq_length(self) -> int:
        return self._shared + self._n

    def get_mask_sizes(self, query_length: int, *args, **kwargs) -> tuple[int, int]:
        return self.get_seq_length() + query_length, 0

    def crop(self, tokens_to_remove: int) -> None:
        if tokens_to_remove < 0 and self._k is not None:
            self._set_length(max(0, self._n + tokens_to_remove))

    def batch_repeat_interleave(self, repeats: int) -> None:  # beam search and friends are not supported
        raise NotImplementedError

    def batch_select_indices(self, indices) -> None:
        raise NotImplementedError


def batch_cache(
    n_layers: int, n_rows: int, capacity: int, prefix_cache=None, shared: bool = False
) -> DynamicCache:
    """A fresh KV cache for one batch of `n_rows`.

    prefix_cache (a batch-1 cache of the shared prefix) with shared=False: the prefix is copied into
    every row; with shared=True the rows hold only their own tokens (use `shared_prefix_attention`)."""
    cache = DynamicCache()
    if prefix_cache is None:
        cache.layers = [GrowingLayer(capacity, n_rows) for _ in range(n_layers)]
    elif shared:
        plen = prefix_cache.layers[0].keys.shape[-2]
        cache.layers = [GrowingLayer(capacity, n_rows, shared_len=plen) for _ in prefix_cache.layers]
    else:
        cache.layers = [GrowingLayer(capacity, n_rows, la.keys, la.values) for la in prefix_cache.layers]
    return cache


def ragged_prefill(
    model, cache_kw: str, prefix_cache, suffixes: list[list[int]], n_layers: int, capacity: int
) -> DynamicCache:
    """Prefill each row's suffix except its last token on its own (no padding), behind the shared
    prefix, and gather the rows right-aligned into one batch cache of length P + width - 1, where
    width is the longest suffix. `generate` then only has to feed every row's last token. Must run
    inside `shared_prefix_attention`."""
    plen = prefix_cache.layers[0].keys.shape[-2]
    width = max(len(s) for s in suffixes)
    device = prefix_cache.layers[0].keys.device
    forward, extra = prefill_forward(model)
    per_row: list[list] = [[] for _ in range(n_layers)]
    for s in suffixes:
        n = len(s) - 1
        if n == 0:
            for layer_parts in per_row:
                layer_parts.append((None, None))
            continue
        one = batch_cache(n_layers, 1, n, prefix_cache, shared=True)
        ids = torch.tensor([s[:-1]], dtype=torch.long, device=device)
        pos = torch.arange(plen, plen + n, device=device)[None]
        mask = torch.ones((1, plen + n), dtype=torch.long, device=device)
        forward(
            input_ids=ids, position_ids=pos, attention_mask=mask, use_cache=True, **{cache_kw: one}, **extra
        )
        for li, layer in enumerate(one.layers):
            per_row[li].append((layer.keys, layer.values))
    cache = batch_cache(n_layers, len(suffixes), capacity, prefix_cache, shared=True)
    for layer, parts in zip(cache.layers, per_row):
        layer.place_rows(parts, width - 1)
    return cache


def prefill_forward(model):
    """(callable, kwargs) that fill a KV cache without computing logits: the decoder stack alone
    when the model exposes it, else the full model asked for the last position's logits only."""
    import inspect

    decoder = model.get_decoder() if hasattr(model, "get_decoder") else None
    if decoder is not None and decoder is not model:
        return decoder, {}
    params = set(inspect.signature(model.forward).parameters)
    return model, ({"logits_to_keep": 1} if "logits_to_keep" in params else {})


def _attention(module, query, key, value, attention_mask, scaling=None, dropout=0.0, **kwargs):
    """Attention over [shared prefix] + [row's own tokens]; plain SDPA when no prefix is active.

    Prefill (several query tokens) runs SDPA over the prefix joined to the row's keys (a one-off
    copy); decoding (one query token per row) scores all rows against the shared prefix at once."""
    prefix = _PREFIX_KV.get()
    if prefix is None:
        return sdpa_attention_forward(
            module, query, key, value, attention_mask, scaling=scaling, dropout=dropout, **kwargs
        )
    kp, vp = prefix[module.layer_idx]  # (1, Hkv, P, D)
    b, hq, q, d = query.shape
    if q > 1:
        full_k = torch.cat([kp.expand(b, -1, -1, -1), key], dim=2)
        full_v = torch.cat([vp.expand(b, -1, -1, -1), value], dim=2)
        return sdpa_attention_forward(
            module, query, full_k, full_v, attention_mask, scaling=scaling, dropout=dropout, **kwargs
        )
    hkv, n = key.shape[1], key.shape[2]
    g, p = hq // hkv, kp.shape[2]
    scale = scaling if scaling is not None else d**-0.5
    qg = query.reshape(b, hkv, g * q, d)  # query head h = kv head (h // g), as in repeat_kv
    # scores against the shared prefix: one product per kv head for all rows (prefix read once)
    s_pre = torch.matmul(qg.transpose(0, 1).reshape(hkv, b * g * q, d), kp[0].transpose(1, 2))
    s_pre = s_pre.view(hkv, b, g * q, p).transpose(0, 1)
    s_own = torch.matmul(qg, key.transpose(2, 3))
    scores = torch.cat([s_pre, s_own], dim=-1).float() * scale
    if attention_mask is not None:
        m = attention_mask[..., -(p + n) :]
        m = m[:, :, None].expand(b, 1, g, q, p + n).reshape(b, 1, g * q, p + n)
        scores = scores.masked_fill(~m, float("-inf")) if m.dtype == torch.bool else scores + m
    w = torch.softmax(scores, dim=-1).to(query.dtype)
    w_pre, w_own = w[..., :p], w[..., p:]
    out = torch.matmul(w_pre.transpose(0, 1).reshape(hkv, b * g * q, p), vp[0])
    out = out.view(hkv, b, g * q, d).transpose(0, 1) + torch.matmul(w_own, value)
    return out.reshape(b, hq, q, d).transpose(1, 2).contiguous(), None


def _mask(*args, **kwargs):
    """SDPA's boolean mask, always materialised (the prefix makes keys longer than queries, where
    SDPA's own `is_causal` would align the causal mask wrongly)."""
    kwargs["allow_is_causal_skip"] = False
    return sdpa_mask(*args, **kwargs)


AttentionInterface.register(ATTN_NAME, _attention)
AttentionMaskInterface.register(ATTN_NAME, _mask)


def supports_shared_prefix(model) -> bool:
    """Models whose attention modules dispatch through transformers' attention interface with plain
    causal attention (no soft-capping, sinks or sliding windows) on SDPA or eager kernels."""
    cfg = model.config
    text_cfg = cfg.get_text_config() if hasattr(cfg, "get_text_config") else cfg
    if getattr(text_cfg, "_attn_implementation", None) not in ("sdpa", "eager"):
        return False
    if getattr(text_cfg, "attn_logit_softcapping", None):
        return False
    mods = [m for m in model.modules() if hasattr(m, "layer_idx") and hasattr(m, "num_key_value_groups")]
    return bool(mods) and all(hasattr(m, "config") for m in mods)


@contextlib.contextmanager
def shared_prefix_attention(model, prefix_cache):
    """Within this block, `model`'s attention completes each row's keys/values with the shared prefix
    held in `prefix_cache` (batch 1)."""
    cfg = model.config
    previous = cfg._attn_implementation
    token = _PREFIX_KV.set([(la.keys, la.values) for la in prefix_cache.layers])
    cfg._attn_implementation = ATTN_NAME
    try:
        yield
    finally:
        cfg._attn_implementation = previous
        _PREFIX_KV.reset(token)
