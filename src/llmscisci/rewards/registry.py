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
    counts_tokens: bool = False  # reads RewardContext.count_tokens (the policy's tokenizer)


@dataclass(slots=True)
class RewardRow:
    """What a reward knows of one completion's row besides its text: the label vector's length, the
    reference labels (None without a `labels` column), the row's group (its `task`), the reward's
    parameters (its defaults, overridden by the mix) and the RewardContext."""

    n_labels: int
    truth: tuple | None
    group: object
    params: dict
    context: RewardContext


# name -> reward, in the order `llmscisci grpo probe` and the docs list them
REWARDS: dict[str, RewardSpec] = {}


def register_reward(spec: RewardSpec) -> RewardSpec:
    """Add (or replace) a reward by its name."""
    REWARDS[spec.name] = spec
    return spec


def reward(name: str, description: str, *,
           bounds: tuple[float, float] | Callable[[dict], tuple[float, float]] = (0.0, 1.0),
           defaults: dict | None = None, needs_labels: bool = False, needs_prevalence: bool = False,
           counts_tokens: bool = False, batch: bool = False):
    """Register a reward under `name` (a decorator; the function is returned unchanged), so that a mix
    names it (`build_mix("format:1,mine:0.5")`, `llmscisci grpo score --rewards`)::

        @reward("short", "1 if the completion has at most 50 words", bounds=(0.0, 1.0))
        def short(completion: str, row: RewardRow) -> float:
            return float(len(completion.split()) <= 50)

    The function scores one completion; with `needs_labels` a row without labels gets None (TRL adds
    nothing for it). `bounds`: (low, high), or a function of the parameters; `defaults`: the parameters
    a mix may set; `counts_tokens`: it counts tokens with `row.context.count_tokens` (the policy's
    tokenizer is then loaded). With `batch=True` the function instead makes the batch function of a whole mix
    step: `fn(context, params) -> BatchFn`."""

    def add(fn):
        make = fn if batch else (lambda ctx, p: _rows(fn, ctx, p, needs_labels))
        bound = bounds if callable(bounds) else _fixed(*bounds)
        register_reward(RewardSpec(name, description, make, bound, dict(defaults or {}), needs_labels,
                                   needs_prevalence, counts_tokens))
        return fn

    return add


def _rows(fn: Callable[[str, RewardRow], float], ctx: RewardContext, params: dict, needs_truth: bool) -> BatchFn:
    default_n = ctx.n_labels

    def batch(texts, truths, groups, lengths=None):
        out = []
        for i, text in enumerate(texts):
            truth = truths[i] if truths is not None else None
            if needs_truth and truth is None:
                out.append(None)
                continue
            n = (lengths[i] if lengths is not None else None) or default_n
            row = RewardRow(n, truth, groups[i] if groups is not None else None, params, ctx)
            out.append(float(fn(text, row)))
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


LENGTH_DEFAULTS = {"cap": 256, "target": 128}


# --- the built-in rewards (definitions in core) -------------------------------------------------------
@reward("format", "1 if the completion matches <think>...</think> <label>...</label> (seed regex)")
def _format(c: str, row: RewardRow) -> float:
    return core.format_reward(c)


@reward("label", "0.5 if the format matches and the label text is a valid one-hot (seed)", bounds=(0.0, 0.5))
def _label(c: str, row: RewardRow) -> float:
    return core.label_reward(c, row.n_labels)


@reward("label_strict", "0.5 if the format matches and the label passes the project's validator "
        "(exclusive none, no repair)", bounds=(0.0, 0.5))
def _label_strict(c: str, row: RewardRow) -> float:
    return core.label_strict_reward(c, row.n_labels, row.context.none_index)


@reward("stepwise", "0.125 non-empty + 0.125 only 0/1 + 0.125 [..] + 0.625 valid one-hot; 0 without the format (seed)")
def _stepwise(c: str, row: RewardRow) -> float:
    return core.stepwise_reward(c, row.n_labels)


@reward("stepwise_strict", "stepwise, with strict validity for the last step")
def _stepwise_strict(c: str, row: RewardRow) -> float:
    return core.stepwise_strict_reward(c, row.n_labels, row.context.none_index)


@reward("hamming", "1 - Hamming loss against the labels column if the format matches and the label is valid, "
        "else 0 (seed; the seed raises without the format)", needs_labels=True)
def _hamming(c: str, row: RewardRow) -> float:
    return core.hamming_reward(c, row.truth)


@reward("hamming_strict", "hamming, with strict validity", needs_labels=True)
def _hamming_strict(c: str, row: RewardRow) -> float:
    return core.hamming_strict_reward(c, row.truth, row.context.none_index)


def _cot_length(c: str, row: RewardRow) -> float:
    p = row.params
    return core.cot_length_reward(c, row.context.count_tokens, p["mode"], p["cap"], p["target"])


def _conditional(c: str, row: RewardRow) -> float:
    p = row.params
    return core.conditional_reward(c, row.n_labels, row.context.count_tokens, p["alpha"], p["tau"], p["mode"],
                                   p["cap"], p["target"])


for _name, _mode, _what in [
    ("cot_length", "raw", "think tokens under the policy tokenizer, 0 without the format (seed; unbounded)"),
    ("cot_length_capped", "capped", "min(think tokens, cap)"),
    ("cot_length_norm", "norm", "min(think tokens / target, 1)"),
    ("cot_length_target", "target", "max(0, 1 - |think tokens - target| / target)"),
]:
    reward(_name, _what, bounds=_length_bounds, defaults={"mode": _mode, **LENGTH_DEFAULTS},
           counts_tokens=True)(_cot_length)
for _name, _mode, _alpha, _what in [
    ("conditional", "raw", core.SEED_ALPHA, ("stepwise + alpha * think tokens when stepwise >= tau, 0 without the "
                                             "format (seed: alpha 0.1, tau 1; unbounded)")),
    ("conditional_norm", "norm", 0.25, ("stepwise + alpha * min(think tokens / target, 1) when stepwise >= tau "
                                        "(bounded)")),
]:
    reward(_name, _what, bounds=_conditional_bounds, counts_tokens=True,
           defaults={"alpha": _alpha, "tau": core.SEED_TAU, "mode": _mode, **LENGTH_DEFAULTS})(_conditional)
del _name, _mode, _alpha, _what


@reward("balanced", "per-label credit weighted by inverse train prevalence of the true class, "
        "0 if invalid or unformatted", needs_labels=True, needs_prevalence=True)
def _balanced(c: str, row: RewardRow) -> float:
    return core.balanced_reward(c, row.truth, _prevalence_for(row.context, row.group))


@reward("f1_micro", "2|P∩T|/(|P|+|T|) of this completion, 0 if invalid or unformatted", needs_labels=True)
def _f1_micro(c: str, row: RewardRow) -> float:
    return core.f1_reward(c, row.truth, "micro")


@reward("f1_macro", "mean per-label F1 over labels either side sets (|P∩T|/|P∪T|), 0 if invalid or "
        "unformatted", needs_labels=True)
def _f1_macro(c: str, row: RewardRow) -> float:
    return core.f1_reward(c, row.truth, "macro")


@reward("group_f1", "leave-one-out share of the batch's macro-F1 (per task), scaled by batch size, "
        "clipped to [-1, 1]; invalid or unformatted labels get `invalid`",
        bounds=lambda p: (min(-1.0, p["invalid"]), max(1.0, p["invalid"])), defaults={"invalid": -1.0},
        needs_labels=True, batch=True)
def _group_f1(ctx: RewardContext, p: dict) -> BatchFn:
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


def counts_tokens(names: Sequence[str]) -> bool:
    """Whether a reward of the mix (`names`) counts tokens (the caller then loads a tokenizer)."""
    return any(REWARDS[n].counts_tokens for n in names)


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
