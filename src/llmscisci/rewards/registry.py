"""Rewards by name, with weights and parameters: the mix a GRPO run optimises.

A mix is written as a string, ``"format:1,label:1,stepwise:1"`` (weight 1 when left out), or as a
TOML table whose values are weights or tables of a weight and parameters::

    [rewards]
    format = 1.0
    stepwise = 1.0
    balanced = 1.0
    cot_length_norm = { weight = 0.2, target = 128 }

`build_mix(spec, context)` returns a :class:`RewardMix`: `mix.funcs` and `mix.weights` go to TRL's
GRPOTrainer (`reward_funcs`, `GRPOConfig.reward_weights`); `mix.score(completions, labels=...)` gives
every component and the weighted total (as TRL sums them: a None component adds nothing).

Each reward's bounds are documented in `REWARDS` (and `llmscisci grpo probe` prints them). Every
reward but `format` pays 0 for a completion without the format, as the seed's do.
The seed's mix is `SEED_MIX`. The seed's length bonus (`cot_length`, `conditional`) is unbounded in
the number of think tokens; `cot_length_capped`, `cot_length_norm`, `cot_length_target` and
`conditional_norm` are the bounded choices, and which one a run uses is written in its config.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field

from llmscisci.errors import UserError
from llmscisci.rewards import core
from llmscisci.rewards.trl import BatchFn, TrlReward

SEED_MIX = "format:1,label:1,stepwise:1"


@dataclass
class RewardContext:
    """What rewards may need besides the completion and its row.

    n_labels: vector length when a row has no `labels` (rows with labels use their own length);
    none_index: position of the exclusive `none` category (negative counts from the end; None: no
    such category), for the strict variants; prevalence: train-split positive share per label, one
    tuple for every row or a mapping task -> tuple (rows carry `task`), for `balanced`;
    count_tokens: the policy's tokenizer (an object with `encode`) or a `str -> int` function for the
    length rewards (None: whitespace pieces).
    """

    n_labels: int = 5
    none_index: int | None = -1
    prevalence: Mapping[str, Sequence[float]] | Sequence[float] | None = None
    count_tokens: core.TokenCounter | object | None = None
    token_method: str = "whitespace"


@dataclass(frozen=True)
class RewardSpec:
    name: str
    description: str
    make: Callable[[RewardContext, dict], BatchFn]
    bounds: Callable[[dict], tuple[float, float]]
    defaults: dict = field(default_factory=dict)
    needs_labels: bool = False
    needs_prevalence: bool = False


def _rows(fn: Callable[[str, int, tuple | None, object], float], ctx: RewardContext, needs_truth: bool) -> BatchFn:
    default_n = ctx.n_labels

    def batch(texts, truths, groups, lengths=None):
        out = []
        for i, text in enumerate(texts):
            truth = truths[i] if truths is not None else None
            if needs_truth and truth is None:
                out.append(None)
                continue
            n = (lengths[i] if lengths is not None else None) or default_n
            out.append(float(fn(text, n, truth, groups[i] if groups is not None else None)))
        return out

    return batch


def _fixed(lo: float, hi: float) -> Callable[[dict], tuple[float, float]]:
    return lambda p: (lo, hi)


def _length_bounds(p: dict) -> tuple[float, float]:
    return core.length_bounds(p["mode"], p["cap"], p["target"])


def _conditional_bounds(p: dict) -> tuple[float, float]:
    hi = _length_bounds(p)[1]
    return (0.0, math.inf if math.isinf(hi) else 1.0 + p["alpha"] * hi)


def _prevalence_for(ctx: RewardContext, group) -> Sequence[float]:
    prev = ctx.prevalence
    if prev is None:
        raise ValueError("reward 'balanced' needs the train-split prevalence (RewardContext.prevalence)")
    if isinstance(prev, Mapping):
        if group is None and len(prev) == 1:  # rows without a task column, one task's prevalences
            return next(iter(prev.values()))
        if group not in prev:
            raise ValueError(f"reward 'balanced': no prevalence for task {group!r} (known: {', '.join(map(str, prev))})")
        return prev[group]
    return prev


def _make_balanced(ctx: RewardContext, p: dict) -> BatchFn:
    return _rows(lambda c, n, t, g: core.balanced_reward(c, t, _prevalence_for(ctx, g)), ctx, True)


def _make_group_f1(ctx: RewardContext, p: dict) -> BatchFn:
    def batch(texts, truths, groups, lengths=None):
        out: list[float | None] = [None] * len(texts)
        idx = [i for i, t in enumerate(truths or []) if t is not None]
        if not idx:
            return out
        vals = core.group_f1_rewards([texts[i] for i in idx], [truths[i] for i in idx],
                                     [groups[i] for i in idx] if groups is not None else None,
                                     invalid=p["invalid"])
        for i, v in zip(idx, vals):
            out[i] = v
        return out

    return batch


LENGTH_DEFAULTS = {"cap": 256, "target": 128}


def _length_spec(name: str, mode: str, what: str) -> RewardSpec:
    return RewardSpec(
        name, what,
        lambda ctx, p: _rows(lambda c, n, t, g: core.cot_length_reward(c, ctx.count_tokens, p["mode"], p["cap"],
                                                                      p["target"]), ctx, False),
        _length_bounds, {"mode": mode, **LENGTH_DEFAULTS},
    )


def _conditional_spec(name: str, mode: str, alpha: float, what: str) -> RewardSpec:
    return RewardSpec(
        name, what,
        lambda ctx, p: _rows(lambda c, n, t, g: core.conditional_reward(c, n, ctx.count_tokens, p["alpha"], p["tau"],
                                                                       p["mode"], p["cap"], p["target"]), ctx, False),
        _conditional_bounds, {"alpha": alpha, "tau": core.SEED_TAU, "mode": mode, **LENGTH_DEFAULTS},
    )


REWARDS: dict[str, RewardSpec] = {s.name: s for s in [
    RewardSpec("format", "1 if the completion matches <think>...</think> <label>...</label> (seed regex)",
               lambda ctx, p: _rows(lambda c, n, t, g: core.format_reward(c), ctx, False), _fixed(0.0, 1.0)),
    RewardSpec("label", "0.5 if the format matches and the label text is a valid one-hot (seed)",
               lambda ctx, p: _rows(lambda c, n, t, g: core.label_reward(c, n), ctx, False), _fixed(0.0, 0.5)),
    RewardSpec("label_strict", "0.5 if the format matches and the label passes the project's validator "
               "(exclusive none, no repair)",
               lambda ctx, p: _rows(lambda c, n, t, g: core.label_strict_reward(c, n, ctx.none_index), ctx, False),
               _fixed(0.0, 0.5)),
    RewardSpec("stepwise", "0.125 non-empty + 0.125 only 0/1 + 0.125 [..] + 0.625 valid one-hot; 0 without the format (seed)",
               lambda ctx, p: _rows(lambda c, n, t, g: core.stepwise_reward(c, n), ctx, False), _fixed(0.0, 1.0)),
    RewardSpec("stepwise_strict", "stepwise, with strict validity for the last step",
               lambda ctx, p: _rows(lambda c, n, t, g: core.stepwise_strict_reward(c, n, ctx.none_index), ctx,
                                    False), _fixed(0.0, 1.0)),
    RewardSpec("hamming", "1 - Hamming loss against the labels column if the format matches and the label is valid, "
               "else 0 (seed; the seed raises without the format)",
               lambda ctx, p: _rows(lambda c, n, t, g: core.hamming_reward(c, t), ctx, True), _fixed(0.0, 1.0),
               needs_labels=True),
    RewardSpec("hamming_strict", "hamming, with strict validity",
               lambda ctx, p: _rows(lambda c, n, t, g: core.hamming_strict_reward(c, t, ctx.none_index), ctx, True),
               _fixed(0.0, 1.0), needs_labels=True),
    _length_spec("cot_length", "raw", "think tokens under the policy tokenizer, 0 without the format "
                 "(seed; unbounded)"),
    _length_spec("cot_length_capped", "capped", "min(think tokens, cap)"),
    _length_spec("cot_length_norm", "norm", "min(think tokens / target, 1)"),
    _length_spec("cot_length_target", "target", "max(0, 1 - |think tokens - target| / target)"),
    _conditional_spec("conditional", "raw", core.SEED_ALPHA,
                      "stepwise + alpha * think tokens when stepwise >= tau, 0 without the format "
                      "(seed: alpha 0.1, tau 1; unbounded)"),
    _conditional_spec("conditional_norm", "norm", 0.25,
                      "stepwise + alpha * min(think tokens / target, 1) when stepwise >= tau (bounded)"),
    RewardSpec("balanced", "per-label credit weighted by inverse train prevalence of the true class, "
               "0 if invalid or unformatted",
               _make_balanced, _fixed(0.0, 1.0), needs_labels=True, needs_prevalence=True),
    RewardSpec("f1_micro", "2|P∩T|/(|P|+|T|) of this completion, 0 if invalid or unformatted",
               lambda ctx, p: _rows(lambda c, n, t, g: core.f1_reward(c, t, "micro"), ctx, True), _fixed(0.0, 1.0),
               needs_labels=True),
    RewardSpec("f1_macro", "mean per-label F1 over labels either side sets (|P∩T|/|P∪T|), "
               "0 if invalid or unformatted",
               lambda ctx, p: _rows(lambda c, n, t, g: core.f1_reward(c, t, "macro"), ctx, True), _fixed(0.0, 1.0),
               needs_labels=True),
    RewardSpec("group_f1", "leave-one-out share of the batch's macro-F1 (per task), scaled by batch size, "
               "clipped to [-1, 1]; invalid or unformatted labels get `invalid`",
               _make_group_f1, lambda p: (min(-1.0, p["invalid"]), max(1.0, p["invalid"])), {"invalid": -1.0},
               needs_labels=True),
]}


@dataclass
class RewardTerm:
    name: str
    weight: float
    params: dict
    bounds: tuple[float, float]
    func: TrlReward

    def describe(self) -> dict:
        return {"name": self.name, "weight": self.weight, "params": self.params,
                "bounds": [_num(self.bounds[0]), _num(self.bounds[1])]}


def _num(x: float):
    return "inf" if math.isinf(x) and x > 0 else ("-inf" if math.isinf(x) else x)


@dataclass
class RewardMix:
    terms: list[RewardTerm]
    context: RewardContext

    @property
    def funcs(self) -> list[TrlReward]:
        return [t.func for t in self.terms]

    @property
    def weights(self) -> list[float]:
        return [t.weight for t in self.terms]

    @property
    def names(self) -> list[str]:
        return [t.name for t in self.terms]

    @property
    def needs_labels(self) -> bool:
        return any(REWARDS[t.name].needs_labels for t in self.terms)

    def bounds(self) -> tuple[float, float]:
        lo = hi = 0.0
        for t in self.terms:
            a, b = t.weight * t.bounds[0], t.weight * t.bounds[1]
            lo += min(a, b) if not (math.isnan(a) or math.isnan(b)) else 0.0
            hi += max(a, b) if not (math.isnan(a) or math.isnan(b)) else 0.0
        return lo, hi

    def score(self, completions: Sequence, **columns) -> dict[str, list]:
        """Every component per completion and the weighted `total` (None components add nothing)."""
        out: dict[str, list] = {}
        for t in self.terms:
            out[t.name] = t.func(prompts=None, completions=completions, **columns)
        total = []
        for i in range(len(completions)):
            s = 0.0
            for t in self.terms:
                v = out[t.name][i]
                if v is not None:
                    s += t.weight * v
            total.append(s)
        out["total"] = total
        return out

    def describe(self) -> dict:
        lo, hi = self.bounds()
        return {"terms": [t.describe() for t in self.terms], "total_bounds": [_num(lo), _num(hi)],
                "token_count": self.context.token_method, "none_index": self.context.none_index}


# --- parsing ---------------------------------------------------------------------------------------
def _unknown(name: str) -> UserError:
    return UserError(f"unknown reward {name!r}: choose from {', '.join(REWARDS)}")


def _weight(raw, name: str) -> float:
    if isinstance(raw, bool):
        raise UserError(f"reward {name!r}: weight must be a number, got {raw!r}")
    try:
        w = float(raw)
    except (TypeError, ValueError):
        raise UserError(f"reward {name!r}: weight must be a number, got {raw!r}") from None
    if not math.isfinite(w):
        raise UserError(f"reward {name!r}: weight must be finite, got {raw!r}")
    return w


def parse_mix(spec: str | Mapping) -> list[tuple[str, float, dict]]:
    """[(name, weight, params)] from "a:1,b:0.5" or a TOML-style mapping (a `rewards` key is entered)."""
    if isinstance(spec, Mapping):
        table = spec.get("rewards", spec) if "rewards" in spec and isinstance(spec.get("rewards"), Mapping) else spec
        items = []
        for name, value in table.items():
            if name not in REWARDS:
                raise _unknown(name)
            if isinstance(value, Mapping):
                params = dict(value)
                weight = _weight(params.pop("weight", 1.0), name)
            else:
                weight, params = _weight(value, name), {}
            items.append((name, weight, params))
        if not items:
            raise UserError("no rewards given: the [rewards] table is empty")
        return items
    if not isinstance(spec, str) or not spec.strip():
        raise UserError('no rewards given: write them as "name:weight,...", e.g. ' + SEED_MIX)
    items, seen = [], set()
    for part in spec.split(","):
        part = part.strip()
        if not part:
            continue
        name, _, raw = part.partition(":")
        name = name.strip()
        if name not in REWARDS:
            raise _unknown(name)
        if name in seen:
            raise UserError(f"reward {name!r} is listed twice")
        seen.add(name)
        items.append((name, _weight(raw.strip(), name) if raw.strip() else 1.0, {}))
    if not items:
        raise UserError('no rewards given: write them as "name:weight,...", e.g. ' + SEED_MIX)
    return items


def _check_params(spec: RewardSpec, params: dict) -> dict:
    unknown = sorted(set(params) - set(spec.defaults))
    if unknown:
        known = ", ".join(spec.defaults) or "none"
        raise UserError(f"reward {spec.name!r}: unknown parameter(s) {', '.join(unknown)} (known: {known})")
    p = {**spec.defaults, **params}
    if "mode" in p and p["mode"] not in core.LENGTH_MODES:
        raise UserError(f"reward {spec.name!r}: mode must be one of {', '.join(core.LENGTH_MODES)}, got {p['mode']!r}")
    for key in ("cap", "target"):
        if key in p and (isinstance(p[key], bool) or not isinstance(p[key], (int, float)) or p[key] <= 0):
            raise UserError(f"reward {spec.name!r}: {key} must be a positive number, got {p[key]!r}")
    for key in ("alpha", "tau", "invalid"):
        if key in p and (isinstance(p[key], bool) or not isinstance(p[key], (int, float))
                         or not math.isfinite(p[key])):
            raise UserError(f"reward {spec.name!r}: {key} must be a number, got {p[key]!r}")
    if "alpha" in p and p["alpha"] < 0:
        raise UserError(f"reward {spec.name!r}: alpha must be >= 0, got {p['alpha']!r}")
    return p


def build_mix(spec: str | Mapping, context: RewardContext | None = None) -> RewardMix:
    """Parse and check a mix, and build its TRL reward functions."""
    ctx = context or RewardContext()
    if ctx.count_tokens is not None and hasattr(ctx.count_tokens, "encode"):  # a tokenizer object
        from llmscisci.rewards.tokens import token_counter

        ctx.count_tokens, ctx.token_method = token_counter(ctx.count_tokens)
    terms = []
    for name, weight, params in parse_mix(spec):
        rs = REWARDS[name]
        p = _check_params(rs, params)
        if rs.needs_prevalence and ctx.prevalence is None:
            raise UserError(f"reward {name!r} needs label prevalences from the train split (give a data folder)")
        func = TrlReward(f"reward_{name}", rs.make(ctx, p), needs_labels=rs.needs_labels, bounds=rs.bounds(p))
        terms.append(RewardTerm(name, weight, p, rs.bounds(p), func))
    return RewardMix(terms, ctx)


def reward_table() -> list[dict]:
    """Every registered reward: name, default bounds, needs, description (for docs and the CLI)."""
    rows = []
    for rs in REWARDS.values():
        lo, hi = rs.bounds(dict(rs.defaults))
        rows.append({"name": rs.name, "bounds": [_num(lo), _num(hi)], "defaults": dict(rs.defaults),
                     "needs_labels": rs.needs_labels, "description": rs.description})
    return rows
