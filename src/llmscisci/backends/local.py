"""Local transformers models behind the Backend interface: batched generation with a shared-prefix
KV cache, seeded sampling, per-batch tokenomics, a context check and schema-constrained decoding.

Speed. Labelling prompts share a long prefix (system prompt + rubric) and differ only in the final
user text. Each `generate` call finds the longest common token prefix of its prompts, runs it through
the model once and reuses that KV cache for every batch (and for later calls whose prompts start with
it). A batch is laid out as

    [shared prefix][pad ... pad][suffix of item i][generated ...]

with the pads masked out: positions of each row's suffix continue right after the prefix
(transformers derives position ids from the cumulative attention mask), so every row computes what it
would compute alone (greedy answers equal one-at-a-time generation; the tests check it). Further, see
`llmscisci.backends.kv_cache`: the prefix's keys/values are held once and attended by all rows
(instead of one copy per row), KV buffers are preallocated (no per-step concatenation), and on a CPU
each row's suffix is prefilled on its own rather than padded to the longest. Models with sliding-window
or recurrent layers fall back to plain left padding. Items are sorted by length before batching.

Structured output: with a pydantic schema, an outlines (outlines-core) logits processor masks every
token that would break the JSON schema. It sees the full token rows that transformers passes to logits
processors, so it works unchanged with the prefix cache; compiled processors are cached per schema.
"""

from __future__ import annotations

import contextlib
import inspect
import json
import os
import time

import torch
from pydantic import BaseModel
from transformers import DynamicCache

from llmscisci.backends.base import YES_NO, Backend, BackendOptions, Generation, GenParams, Messages, OnResult
from llmscisci.backends.kv_cache import (
    batch_cache,
    prefill_forward,
    ragged_prefill as prefill_rows,
    shared_prefix_attention,
    supports_shared_prefix,
)

MIN_PREFIX = 16  # shorter common prefixes are not worth a separate forward pass
RAGGED_WASTE = 0.1  # prefill rows one by one when padding would add at least this share of tokens
WHITESPACE = r"[ ]?"  # compact JSON: at most one space between tokens of structured output


def _common_prefix_len(rows: list[list[int]]) -> int:
    if not rows:
        return 0
    return len(os.path.commonprefix(rows))


def balanced_batches(items: list, batch_size: int) -> list[list]:
    """Consecutive batches of at most `batch_size`, as equal as possible (70 by 32 -> 24, 23, 23), so
    no small last batch pays a whole decoding loop for a few rows."""
    if not items:
        return []
    k = -(-len(items) // batch_size)
    size, extra = divmod(len(items), k)
    out, start = [], 0
    for j in range(k):
        n = size + (1 if j < extra else 0)
        out.append(items[start : start + n])
        start += n
    return out


class LocalBackend(Backend):
    """A local transformers model (see `llmscisci.backends.models` for the names it accepts)."""

    can_score = True

    def __init__(
        self,
        model_name: str,
        options: BackendOptions | None = None,
        *,
        loaded=None,
        prefix_cache: bool = True,
        shared_attention: bool = True,
        ragged_prefill: bool = True,
        sort_by_length: bool = True,
    ):
        from llmscisci.backends.models import ensure_pad_token, load

        self.options = options or BackendOptions()
        self.loaded = loaded if loaded is not None else load(model_name, self.options)
        self.model = self.loaded.model
        self.tokenizer = self.loaded.tokenizer
        self.tokenizer.padding_side = "left"
        ensure_pad_token(self.tokenizer)
        self.name = model_name
        self.batch_size = max(1, int(self.options.batch_size))
        self.context_length = self._context_length()
        self.sort_by_length = sort_by_length
        self._plain_kv = self._prefix_cache_supported()  # full attention everywhere, dynamic KV cache
        self.prefix_cache = prefix_cache and self._plain_kv
        # the shared prefix is kept once and attended by all rows (else copied into every row)
        self.shared_attention = self.prefix_cache and shared_attention and supports_shared_prefix(self.model)
        # on a CPU, prefill rows one by one rather than padded (pads cost as much as tokens there)
        self.ragged_prefill = self.shared_attention and ragged_prefill and self.model.device.type == "cpu"
        self._prefix: tuple[tuple[int, ...], object] | None = None  # (token ids, DynamicCache of batch 1)
        self._outlines_model = None
        self._processors: dict[str, object] = {}
        params = inspect.signature(self.model.forward).parameters
        self._cache_kw = "cache" if "cache" in params else "past_key_values"
        cfg = self.model.config
        text_cfg = cfg.get_text_config() if hasattr(cfg, "get_text_config") else cfg
        self._n_layers = int(getattr(text_cfg, "num_hidden_layers", 0) or 0)
        self._eos_ids = self._eos_token_ids()
        self._yes_no: tuple[list[int], list[int]] | None = None

    # ----------------------------------------------------------------- description and token counts
    def _context_length(self) -> int | None:
        cfg = self.model.config
        text_cfg = cfg.get_text_config() if hasattr(cfg, "get_text_config") else cfg
        n = getattr(text_cfg, "max_position_embeddings", None)
        tok_max = getattr(self.tokenizer, "model_max_length", None)
        if isinstance(tok_max, int) and 0 < tok_max < 10**7:
            n = min(n, tok_max) if n else tok_max
        return int(n) if n else None

    def _eos_token_ids(self) -> list[int]:
        ids: list[int] = []
        gen_eos = getattr(getattr(self.model, "generation_config", None), "eos_token_id", None)
        candidates = list(gen_eos) if isinstance(gen_eos, (list, tuple)) else [gen_eos]
        for v in candidates + [self.tokenizer.eos_token_id]:
            if v is not None and int(v) not in ids:
                ids.append(int(v))
        return ids

    def _prefix_cache_supported(self) -> bool:
        """Shared-prefix caching needs a plain dynamic KV cache with full attention everywhere: pads
        between prefix and suffix would shift a sliding window, and recurrent layers have no KV."""
        cfg = self.model.config
        text_cfg = cfg.get_text_config() if hasattr(cfg, "get_text_config") else cfg
        layer_types = getattr(text_cfg, "layer_types", None)
        if layer_types and any(t != "full_attention" for t in layer_types):
            return False
        if getattr(text_cfg, "sliding_window", None) and getattr(text_cfg, "use_sliding_window", True):
            return False
        return not getattr(text_cfg, "is_encoder_decoder", False)

    def describe(self) -> dict:
        return {
            "name": self.name,
            "backend": "local",
            **self.loaded.describe(),
            "batch_size": self.batch_size,
            "context_length": self.context_length,
            "prefix_cache": self.prefix_cache,
            "shared_prefix_attention": self.shared_attention,
            "ragged_prefill": self.ragged_prefill,
            "structured_output": "outlines-core (outlines 1.x JSON-schema logits processor)",
            "trust_remote_code": bool(self.options.trust_remote_code),
        }

    def prompt_text(self, messages: Messages) -> str:
        return self.tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)

    def prompt_ids(self, messages: Messages) -> list[int]:
        """Token ids of a conversation rendered with the chat template and the generation prompt.
        The template writes any bos itself, so no special tokens are added on top."""
        return list(self.tokenizer(self.prompt_text(messages), add_special_tokens=False)["input_ids"])

    def count_tokens(self, messages: Messages) -> int:
        return len(self.prompt_ids(messages))

    # ----------------------------------------------------------------- structured output
    def _processor(self, schema: type[BaseModel]):
        """An outlines JSON-schema logits processor for `schema`, compiled once and reset per batch."""
        key = json.dumps(schema.model_json_schema())
        proc = self._processors.get(key)
        if proc is None:
            import outlines
            from outlines.backends import get_json_schema_logits_processor

            if self._outlines_model is None:
                self._outlines_model = outlines.from_transformers(self.model, self.tokenizer)
            proc = get_json_schema_logits_processor(
                "outlines_core", self._outlines_model, key, whitespace_pattern=WHITESPACE
            )
            self._processors[key] = proc
        return proc

    # ----------------------------------------------------------------- shared prefix
    def _shared_prefix(self, rows: list[list[int]]):
        """(ids, cache) of a prefix shared by all rows (each keeping at least one token of its own),
        reusing the last computed one when it still applies; None when not worthwhile."""
        if not self.prefix_cache or not rows:
            return None
        limit = min(len(r) for r in rows) - 1
        if self._prefix is not None:
            ids = self._prefix[0]
            n = len(ids)
            if n <= limit and all(tuple(r[:n]) == ids for r in rows):
                return self._prefix
        if len(rows) < 2:
            return None
        n = min(_common_prefix_len(rows), limit)
        if n < MIN_PREFIX:
            return None
        ids = tuple(rows[0][:n])
        cache = DynamicCache(config=self.model.config)
        x = torch.tensor([ids], dtype=torch.long, device=self.model.device)
        forward, extra = prefill_forward(self.model)  # only the cache is needed, not logits
        with torch.inference_mode():
            mask = torch.ones_like(x)
            forward(input_ids=x, attention_mask=mask, use_cache=True, **{self._cache_kw: cache}, **extra)
        self._prefix = (ids, cache)
        return self._prefix

    def clear_prefix_cache(self) -> None:
        self._prefix = None

    # ----------------------------------------------------------------- generation
    def generate(
        self,
        conversations: list[Messages],
        params: GenParams = GenParams(),
        schema: type[BaseModel] | None = None,
        on_result: OnResult | None = None,
    ) -> list[Generation]:
        rows = [self.prompt_ids(c) for c in conversations]
        results: list[Generation | None] = [None] * len(rows)
        todo = []
        for i, ids in enumerate(rows):
            fits = self.context_length is None or len(ids) + params.max_new_tokens <= self.context_length
            if fits:
                todo.append(i)
                continue
            gen = Generation(
                tokens_in=len(ids),
                model_version=self.model_version,
                error=(
                    f"prompt of {len(ids)} tokens + max_new_tokens {params.max_new_tokens} exceeds the "
                    f"context length {self.context_length}"
                ),
            )
            results[i] = gen
            if on_result:
                on_result(i, gen)
        if self.sort_by_length:
            todo.sort(key=lambda i: -len(rows[i]))
        prefix = self._shared_prefix([rows[i] for i in todo])
        processor = self._processor(schema) if schema is not None else None
        for b, idx in enumerate(balanced_batches(todo, self.batch_size)):
            gens = self.generate_batch(
                [rows[i] for i in idx], params, processor=processor, seed=params.seed + b, prefix=prefix
            )
            for i, gen in zip(idx, gens):
                results[i] = gen
                if on_result:
                    on_result(i, gen)
        return results  # type: ignore[return-value]

    @property
    def model_version(self) -> str:
        r = self.loaded.resolved
        return r.path_or_id + (f" + adapter {r.adapter}" if r.adapter else "")

    def generate_batch(
        self,
        rows: list[list[int]],
        params: GenParams,
        *,
        processor=None,
        seed: int | None = None,
        prefix=None,
        min_new_tokens: int = 0,
    ) -> list[Generation]:
        """Generate for one batch of token-id prompts (all fitting the context), laid out as
        [prefix][pads][suffix] when `prefix` (ids, cache) is given, else left-padded."""

        tok = self.tokenizer
        device = self.model.device
        pad = tok.pad_token_id if tok.pad_token_id is not None else self._eos_ids[0]
        n_rows = len(rows)
        p_ids, p_cache = prefix if prefix is not None else ((), None)
        plen = len(p_ids)
        suffixes = [r[plen:] for r in rows]
        width = max(len(s) for s in suffixes)
        input_ids = torch.full((n_rows, plen + width), pad, dtype=torch.long)
        mask = torch.zeros((n_rows, plen + width), dtype=torch.long)
        if plen:
            input_ids[:, :plen] = torch.tensor(p_ids, dtype=torch.long)
            mask[:, :plen] = 1
        for r, s in enumerate(suffixes):
            input_ids[r, plen + width - len(s) :] = torch.tensor(s, dtype=torch.long)
            mask[r, plen + width - len(s) :] = 1
        kwargs: dict = {}
        shared = p_cache is not None and self.shared_attention
        if self._plain_kv:  # full-attention models: preallocated KV buffers (+ the shared prefix)
            capacity = (0 if shared else plen) + width + int(params.max_new_tokens) + 1
            kwargs[self._cache_kw] = batch_cache(self._n_layers, n_rows, capacity, p_cache, shared=shared)
        attention = shared_prefix_attention(self.model, p_cache) if shared else contextlib.nullcontext()
        waste = 1 - sum(len(x) for x in suffixes) / (n_rows * width)
        ragged = shared and self.ragged_prefill and waste >= RAGGED_WASTE
        sample = params.temperature > 0
        if sample:
            kwargs.update(
                do_sample=True, temperature=float(params.temperature), top_p=float(params.top_p), top_k=None
            )
        else:
            kwargs.update(do_sample=False, temperature=None, top_p=None, top_k=None)
        if processor is not None:
            from transformers import LogitsProcessorList

            processor.reset()
            kwargs["logits_processor"] = LogitsProcessorList([processor])
        if seed is not None:
            torch.manual_seed(int(seed))
        t0 = time.perf_counter()
        with torch.inference_mode(), attention:
            if ragged:
                kwargs[self._cache_kw] = prefill_rows(
                    self.model, self._cache_kw, p_cache, suffixes, self._n_layers, capacity
                )
            out = self.model.generate(
                input_ids=input_ids.to(device),
                attention_mask=mask.to(device),
                max_new_tokens=int(params.max_new_tokens),
                min_new_tokens=int(min_new_tokens) or None,
                eos_token_id=self._eos_ids,
                pad_token_id=pad,
                **kwargs,
            )
        seconds = time.perf_counter() - t0
        new = out[:, plen + width :].tolist()
        eos = set(self._eos_ids)
        gens = []
        toks_out = []
        finish = []
        for seq in new:
            stop = next((k for k, t in enumerate(seq) if t in eos), None)
            if stop is None:
                toks_out.append(len(seq))
                finish.append("length")
                gens.append(seq)
            else:
                toks_out.append(stop + 1)
                finish.append("stop")
                gens.append(seq[:stop])
        texts = tok.batch_decode(gens, skip_special_tokens=True)
        total_in = sum(len(r) for r in rows)
        total_out = sum(toks_out)
        batch = {
            "batch_size": n_rows,
            "batch_seconds": round(seconds, 4),
            "batch_tokens_in": total_in,
            "batch_tokens_out": total_out,
            "batch_tokens_per_s": round(total_out / seconds, 2) if seconds > 0 else None,
            "prefix_tokens": plen,
            "prefill": "ragged" if ragged else "padded",
        }
        return [
            Generation(
                text=text,
                tokens_in=len(row),
                tokens_out=n_out,
                seconds=seconds / n_rows,
                model_version=self.model_version,
                extra={**batch, "finish_reason": why},
            )
            for text, row, n_out, why in zip(texts, rows, toks_out, finish)
        ]

    # ----------------------------------------------------------------- scoring (yes/no log-odds)
    def answer_token_ids(self) -> tuple[list[int], list[int]]:
        """Token ids of the one-token spellings of yes and of no (case, leading space)."""
        if self._yes_no is None:
            found = []
            for words in YES_NO:
                spelled = [self.tokenizer(w, add_special_tokens=False)["input_ids"] for w in sorted(words)]
                ids = {t[0] for t in spelled if len(t) == 1}
                if not ids:  # no one-token spelling: the first token of each spelling
                    ids = {t[0] for t in spelled if t}
                found.append(ids)
            yes, no = found
            self._yes_no = (sorted(yes - no), sorted(no - yes))
        return self._yes_no

    def score_yes_no(self, conversations: list[Messages],
                     on_result: OnResult | None = None) -> list[Generation]:
        """Log-odds of yes vs no as the next token after each conversation (see `Backend.score_yes_no`).

        Conversations that follow each other and share more than the common prefix of all (the questions
        about one passage) are scored together: their shared part (system prompt + passage) is run once,
        on top of the prefix cache of the system prompt, and only the short questions are batched."""
        rows = [self.prompt_ids(c) for c in conversations]
        results: list[Generation | None] = [None] * len(rows)
        todo = []
        for i, ids in enumerate(rows):
            if self.context_length is None or len(ids) + 1 <= self.context_length:
                todo.append(i)
                continue
            results[i] = Generation(
                tokens_in=len(ids), model_version=self.model_version,
                error=f"prompt of {len(ids)} tokens exceeds the context length {self.context_length}")
            if on_result:
                on_result(i, results[i])
        base = self._shared_prefix([rows[i] for i in todo])
        for group in self._score_groups(todo, rows, len(base[0]) if base else 0):
            for idx in balanced_batches(group, self.batch_size):
                t0 = time.perf_counter()
                with torch.inference_mode():
                    logits = self._next_logits([rows[i] for i in idx], base)
                seconds = time.perf_counter() - t0
                logp = torch.log_softmax(logits.float(), dim=-1)
                yes, no = self.answer_token_ids()
                odds = (torch.logsumexp(logp[:, yes], -1) - torch.logsumexp(logp[:, no], -1)).tolist()
                for i, lo in zip(idx, odds):
                    results[i] = Generation(
                        text="yes" if lo > 0 else "no", tokens_in=len(rows[i]), tokens_out=0,
                        seconds=seconds / len(idx), model_version=self.model_version,
                        extra={"log_odds": float(lo), "batch_size": len(idx)})
                    if on_result:
                        on_result(i, results[i])
        return results  # type: ignore[return-value]

    @staticmethod
    def _score_groups(todo: list[int], rows: list[list[int]], base_len: int) -> list[list[int]]:
        """Runs of consecutive rows sharing at least MIN_PREFIX tokens beyond the common prefix."""
        groups: list[list[int]] = []
        for i in todo:
            if groups and _common_prefix_len([rows[groups[-1][0]], rows[i]]) >= base_len + MIN_PREFIX:
                groups[-1].append(i)
            else:
                groups.append([i])
        return groups

    def _next_logits(self, rows: list[list[int]], base) -> torch.Tensor:
        """Next-token logits after each row (n_rows x vocab). The rows' own common prefix (at least the
        run's system-prompt prefix) runs once at batch 1; the rest is laid out [prefix][pads][suffix]
        (pads masked, positions continuing after the prefix), so the last position is every row's
        answer position and only its logits are computed."""
        device = self.model.device
        n = min(_common_prefix_len(rows), min(len(r) for r in rows) - 1) if self.prefix_cache else 0
        cache = None
        if n:
            b_ids, b_cache = base if base is not None and len(base[0]) <= n else ((), None)
            start = len(b_ids)
            cache = batch_cache(self._n_layers, 1, n + 1, b_cache)
            if n > start:
                forward, extra = prefill_forward(self.model)
                forward(input_ids=torch.tensor([rows[0][start:n]], device=device),
                        position_ids=torch.arange(start, n, device=device)[None],
                        attention_mask=torch.ones((1, n), dtype=torch.long, device=device),
                        use_cache=True, **{self._cache_kw: cache}, **extra)
        suffixes = [r[n:] for r in rows]
        width = max(len(x) for x in suffixes)
        x = torch.full((len(rows), width), self._eos_ids[0], dtype=torch.long)
        mask = torch.zeros((len(rows), n + width), dtype=torch.long)
        mask[:, :n] = 1
        for r, suf in enumerate(suffixes):
            x[r, width - len(suf):] = torch.tensor(suf)
            mask[r, n + width - len(suf):] = 1
        pos = (mask.cumsum(-1) - 1).clamp(min=0)[:, n:]
        kw: dict = {}
        if cache is not None:
            kw[self._cache_kw] = batch_cache(self._n_layers, len(rows), n + width, cache)
        if "logits_to_keep" in inspect.signature(self.model.forward).parameters:
            kw["logits_to_keep"] = 1
        out = self.model(input_ids=x.to(device), position_ids=pos.to(device), attention_mask=mask.to(device),
                         use_cache=cache is not None, **kw)
        return out.logits[:, -1]
