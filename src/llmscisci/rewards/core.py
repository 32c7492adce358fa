"""Reward functions for GRPO on the multi-label task: pure functions of one completion string.

A completion should look like ``<think> ... </think> <label> [a, b, c, d, e] </label>``.

Extraction (the seed's ``split`` semantics, kept exactly):
  * label text: what follows the LAST ``<label>`` up to the next ``</label>``, stripped. With no
    ``<label>`` at all that is the whole completion; with no closing tag, everything to the end.
  * think text: the same between the last ``<think>`` and the next ``</think>``.

Validity:
  * seed ("valid one-hot", :func:`is_valid_onehot`): the label text parses with ``ast.literal_eval``
    as a Python list of exactly ``n`` ints, each 0 or 1. No check of the exclusive-``none`` rule.
    Python literal rules apply as in the seed: ``True``/``False`` are ints, so are ``0x1`` and ``+1``;
    a trailing comma or a ``# comment`` parses; ``1.0`` (a float) and ``"1"`` (a string) do not.
  * strict (:func:`parse_strict`): seed-valid AND accepted unchanged by the project's label validator
    (``data.validate``: shape, then the exclusive-``none`` rule with no repair needed).

The format gate (the seed's rule): every reward other than ``format`` scores only a completion that
matches the whole format pattern, and pays 0 for any other (the seed's ``hamming`` raises on such a
completion; paying 0 is the reading kept here). The project's own variants keep that rule too, so no
reward pays a completion without the format.

Rewards (value for one completion that matches the format; 0 for one that does not; ``n`` = number
of labels, ``L`` = think tokens):

  =====================  ==============  ================================================================
  name                   bounds          definition
  =====================  ==============  ================================================================
  format                 {0, 1}          1 if ``re.match(FORMAT_PATTERN, c)`` (the only ungated reward)
  label                  {0, 0.5}        0.5 if the label text is a valid one-hot (seed)
  label_strict           {0, 0.5}        0.5 if the label text is strictly valid
  stepwise               [0, 1]          +0.125 label text non-empty; +0.125 only 0/1 digits once
                                         brackets, commas and whitespace are removed (at least one
                                         digit); +0.125 starts with ``[`` and ends with ``]``;
                                         +0.625 valid one-hot (seed). Steps are independent.
  stepwise_strict        [0, 1]          stepwise with strict validity for the last step
  hamming                [0, 1]          1 - HammingLoss(truth, pred) if the label is valid, else 0 (seed)
  hamming_strict         [0, 1]          same, with strict validity
  cot_length             [0, inf)        L (seed; unbounded)
  cot_length_capped      [0, cap]        min(L, cap)                              (cap 256)
  cot_length_norm        [0, 1]          min(L / target, 1)                       (target 128)
  cot_length_target      [0, 1]          max(0, 1 - |L - target| / target): past the target pays less
  conditional            [0, inf)        stepwise + alpha * L if stepwise >= tau, else stepwise
                                         (seed: alpha 0.1, tau 1.0; unbounded)
  conditional_norm       [0, 1 + alpha]  stepwise + alpha * min(L / target, 1) if stepwise >= tau
                                         (alpha 0.25); any length mode can be chosen by parameter
  balanced               [0, 1]          per-label credit weighted by inverse train prevalence of the
                                         true class: sum_j w_j(t_j)[p_j = t_j] / sum_j w_j(t_j)
  f1_micro               [0, 1]          2|P∩T| / (|P| + |T|) for this completion (1 when both empty)
  f1_macro               [0, 1]          mean over labels in P∪T of [p_j = t_j = 1] (= |P∩T|/|P∪T|)
  group_f1               [-1, 1]         see :func:`group_f1_rewards` (one value per completion of a
                                         batch, from the batch's macro-F1 per task; a completion
                                         without the format counts as an invalid label)
  =====================  ==============  ================================================================

The names are those of the registry (`rewards.registry.REWARDS`); `n` is the length of the row's
ground-truth vector (the `labels` column), else the context's (5 for the built-in tasks). The six
seed rewards give the seed's value on every completion of the seed's reward vectors (tested).

Every function takes any string (other inputs are converted by the TRL adapters) and never raises.
The format check is computed without the regular expression (whose backtracking is cubic on
repeated tags: 48 kB of ``<think>a</think> <label>`` took over 7 minutes); :func:`format_matches`
is exactly equivalent to ``re.match(FORMAT_PATTERN, text) is not None`` (tested).
"""

from __future__ import annotations

import ast
import math
import re
from collections.abc import Callable, Sequence
from functools import lru_cache

from llmscisci.data.validate import LabelError, check_shape, is_valid

FORMAT_PATTERN = r"(?sm).*<think>.*?</think>\s*<label>.*?</label>.*"
_FORMAT_RE = re.compile(FORMAT_PATTERN)
_CLOSE_THEN_LABEL = re.compile(r"</think>\s*<label>")
_STRIP_FOR_DIGITS = re.compile(r"[\[\],\s]")
_ONLY_BITS = re.compile(r"[01]+")

THINK_OPEN, THINK_CLOSE = "<think>", "</think>"
LABEL_OPEN, LABEL_CLOSE = "<label>", "</label>"

STEP = 0.125
VALID_STEP = 0.625
LABEL_VALUE = 0.5
SEED_ALPHA = 0.1
SEED_TAU = 1.0
LENGTH_MODES = ("raw", "capped", "norm", "target")
_CACHE_MAX_CHARS = 16_384  # longer strings are parsed each time (never held in the caches)

TokenCounter = Callable[[str], int]


# --- extraction ----------------------------------------------------------------------------------
def format_matches_regex(text: str) -> bool:
    """The seed's check, literally: ``re.match(FORMAT_PATTERN, text)``. Slow on repeated tags."""
    return _FORMAT_RE.match(text) is not None


def format_matches(text: str) -> bool:
    """Equivalent to :func:`format_matches_regex`, in linear time.

    The pattern matches iff some ``<think>`` is followed (after its end) by a ``</think>``, then
    optional whitespace and ``<label>``, and later by a ``</label>``. The earliest ``<think>`` and the
    earliest qualifying ``</think>\\s*<label>`` leave the most room, so checking those suffices.
    """
    start = text.find(THINK_OPEN)
    if start < 0:
        return False
    m = _CLOSE_THEN_LABEL.search(text, start + len(THINK_OPEN))
    return m is not None and text.find(LABEL_CLOSE, m.end()) >= 0


def _between_last(text: str, open_tag: str, close_tag: str) -> str:
    """``text.split(open_tag)[-1].split(close_tag)[0].strip()`` without building the lists."""
    i = text.rfind(open_tag)
    rest_start = 0 if i < 0 else i + len(open_tag)
    j = text.find(close_tag, rest_start)
    return (text[rest_start:] if j < 0 else text[rest_start:j]).strip()


def label_text(text: str) -> str:
    """What follows the last ``<label>`` up to the next ``</label>``, stripped (seed semantics)."""
    return _between_last(text, LABEL_OPEN, LABEL_CLOSE)


def _analyse_uncached(text: str) -> tuple[bool, str]:
    return format_matches(text), _between_last(text, LABEL_OPEN, LABEL_CLOSE)


@lru_cache(maxsize=4096)
def _analyse_cached(text: str) -> tuple[bool, str]:
    return _analyse_uncached(text)


def analyse(text: str) -> tuple[bool, str]:
    """(format matches, label text), cached for short completions: TRL calls every reward of a mix
    on the same batch of completions, so each is scanned once."""
    if len(text) > _CACHE_MAX_CHARS:
        return _analyse_uncached(text)
    return _analyse_cached(text)


def clear_caches() -> None:
    _analyse_cached.cache_clear()
    _parse_onehot_cached.cache_clear()
    _steps_cached.cache_clear()


def think_text(text: str) -> str:
    """What follows the last ``<think>`` up to the next ``</think>``, stripped (seed semantics)."""
    return _between_last(text, THINK_OPEN, THINK_CLOSE)


# --- validity ------------------------------------------------------------------------------------
# Whitespace the fast path accepts: only the ASCII characters that Python's tokenizer reads as
# whitespace inside brackets (space, tab, form feed, and the line ends \n and \r). Every other
# character (a no-break space, \x0b, \x1c, ...) leaves the decision to the literal parser.
_FAST_WS = r"[ \t\f\n\r]*"


@lru_cache(maxsize=32)
def _fast_list_re(n: int) -> re.Pattern:
    """The common case, decided without the Python parser: ``[b, b, ..., b]`` with 0/1 digits.

    The pattern only uses ASCII brackets, commas, the digits 0 and 1 and `_FAST_WS`, so a string it
    matches is a Python list display of n int literals 0 or 1 (optionally with a trailing comma),
    which ``ast.literal_eval`` reads as that list; anything else goes to the slow path.
    """
    ws = _FAST_WS
    body = ws + "[01]" + ws + ("," + ws + "[01]" + ws) * (n - 1)
    return re.compile(r"\[" + body + "(?:," + ws + r")?\]")


def _parse_onehot_uncached(label: str, n: int) -> tuple[int, ...] | None:
    if n > 0 and _fast_list_re(n).fullmatch(label):
        return tuple(1 if ch == "1" else 0 for ch in label if ch in "01")
    try:
        value = ast.literal_eval(label)
    except Exception:  # noqa: BLE001 - SyntaxError, ValueError, RecursionError, MemoryError...
        return None
    if not isinstance(value, list) or len(value) != n:
        return None
    out = []
    for x in value:
        if not isinstance(x, int) or x not in (0, 1):  # the seed's test: bools pass (ints in Python)
            return None
        out.append(int(x))
    return tuple(out)


@lru_cache(maxsize=8192)
def _parse_onehot_cached(label: str, n: int) -> tuple[int, ...] | None:
    return _parse_onehot_uncached(label, n)


def parse_onehot(label: str, n: int = 5) -> tuple[int, ...] | None:
    """The label text as a 0/1 tuple if it is a valid one-hot in the seed's sense, else None."""
    if not isinstance(label, str):
        return None
    if len(label) > _CACHE_MAX_CHARS:
        return _parse_onehot_uncached(label, n)
    return _parse_onehot_cached(label, n)


def is_valid_onehot(label: str, n: int = 5) -> bool:
    """The seed's test: a Python-literal list of exactly ``n`` ints, each 0 or 1 (no `none` rule)."""
    return parse_onehot(label, n) is not None


def resolve_none_index(none_index: int | None, n: int) -> int | None:
    """A negative index counts from the end (-1: the last category); None: no `none` category."""
    if none_index is None:
        return None
    idx = none_index + n if none_index < 0 else none_index
    return idx if 0 <= idx < n else None


def parse_strict(label: str, n: int = 5, none_index: int | None = -1) -> tuple[int, ...] | None:
    """Seed-valid and accepted unchanged by the project's validator (shape and exclusive `none`)."""
    vec = parse_onehot(label, n)
    if vec is None:
        return None
    try:
        vec = check_shape(vec, n)
    except LabelError:
        return None
    return vec if is_valid(vec, resolve_none_index(none_index, n)) else None


# --- format and label rewards --------------------------------------------------------------------
def format_reward(completion: str) -> float:
    return 1.0 if analyse(completion)[0] else 0.0


def label_reward(completion: str, n: int = 5) -> float:
    ok, label = analyse(completion)
    return LABEL_VALUE if ok and parse_onehot(label, n) is not None else 0.0


def label_strict_reward(completion: str, n: int = 5, none_index: int | None = -1) -> float:
    ok, label = analyse(completion)
    return LABEL_VALUE if ok and parse_strict(label, n, none_index) is not None else 0.0


@lru_cache(maxsize=4096)
def _steps_cached(label: str) -> float:
    r = 0.0
    if label:
        r += STEP
    if _ONLY_BITS.fullmatch(_STRIP_FOR_DIGITS.sub("", label)):
        r += STEP
    if label.startswith("[") and label.endswith("]"):
        r += STEP
    return r


def _steps(label: str) -> float:
    return _steps_cached.__wrapped__(label) if len(label) > _CACHE_MAX_CHARS else _steps_cached(label)


def stepwise_reward(completion: str, n: int = 5) -> float:
    ok, label = analyse(completion)
    if not ok:
        return 0.0
    return _steps(label) + (VALID_STEP if parse_onehot(label, n) is not None else 0.0)


def stepwise_strict_reward(completion: str, n: int = 5, none_index: int | None = -1) -> float:
    ok, label = analyse(completion)
    if not ok:
        return 0.0
    return _steps(label) + (VALID_STEP if parse_strict(label, n, none_index) is not None else 0.0)


# --- correctness rewards -------------------------------------------------------------------------
def _truth(truth: Sequence) -> tuple[int, ...]:
    """Truth vectors are 0/1 sequences (the TRL adapters check them); only the container is normalised."""
    return truth if type(truth) is tuple else tuple(truth)


def hamming_score(pred: Sequence[int], truth: Sequence[int]) -> float:
    """1 - Hamming loss of one prediction (equals 1 - sklearn.metrics.hamming_loss on one row)."""
    n = len(truth)
    if n == 0:
        return 1.0
    return 1.0 - sum(1 for p, t in zip(pred, truth) if p != t) / n


def _formatted_prediction(completion: str, n: int) -> tuple[int, ...] | None:
    """The valid one-hot of a completion that matches the format, else None (the gate of every
    correctness reward)."""
    ok, label = analyse(completion)
    return parse_onehot(label, n) if ok else None


def hamming_reward(completion: str, truth: Sequence[int]) -> float:
    """1 - Hamming loss when the format matches and the label is valid, else 0 (the seed raises on
    a completion without the format; 0 here)."""
    t = _truth(truth)
    pred = _formatted_prediction(completion, len(t))
    return 0.0 if pred is None else hamming_score(pred, t)


def hamming_strict_reward(completion: str, truth: Sequence[int], none_index: int | None = -1) -> float:
    ok, label = analyse(completion)
    if not ok:
        return 0.0
    t = _truth(truth)
    pred = parse_strict(label, len(t), none_index)
    return 0.0 if pred is None else hamming_score(pred, t)


def prevalence(vectors: Sequence[Sequence[int]], smoothing: float = 1.0) -> tuple[float, ...]:
    """Per-label share of positives in `vectors` (use the TRAIN split), Laplace-smoothed so that no
    share is exactly 0 or 1: (count + smoothing) / (N + 2 * smoothing)."""
    vecs = [_truth(v) for v in vectors]
    if not vecs:
        raise ValueError("prevalence needs at least one label vector")
    n = len(vecs[0])
    if any(len(v) != n for v in vecs):
        raise ValueError("label vectors of different lengths")
    total = len(vecs)
    return tuple((sum(v[j] for v in vecs) + smoothing) / (total + 2 * smoothing) for j in range(n))


def balanced_score(pred: Sequence[int], truth: Sequence[int], prev: Sequence[float]) -> float:
    """Per-label credit weighted by the inverse prevalence of the true class.

    w_j(1) = 1 / pi_j, w_j(0) = 1 / (1 - pi_j); score = sum_j w_j(t_j) [p_j = t_j] / sum_j w_j(t_j).
    A correct rare positive counts as much as many correct common negatives, so a constant answer
    (the per-label majority vector included) no longer earns most of the reward.
    """
    num = den = 0.0
    for p, t, pi in zip(pred, truth, prev):
        pi = min(max(float(pi), 1e-6), 1 - 1e-6)
        w = 1.0 / pi if t else 1.0 / (1.0 - pi)
        den += w
        if p == t:
            num += w
    return num / den if den > 0 else 0.0


def balanced_reward(completion: str, truth: Sequence[int], prev: Sequence[float]) -> float:
    t = _truth(truth)
    if len(prev) != len(t):
        return 0.0
    pred = _formatted_prediction(completion, len(t))
    return 0.0 if pred is None else balanced_score(pred, t, prev)


def f1_score_one(pred: Sequence[int], truth: Sequence[int], average: str = "micro") -> float:
    """F1 of one prediction. micro: 2|P∩T|/(|P|+|T|) (sklearn's `samples`/`micro` on one row);
    macro: mean per-label F1 over the labels either side sets (sklearn `macro`,
    zero_division=nan, which excludes labels with no positive on either side). Both 1.0 when P and T
    are both empty."""
    tp = sum(1 for p, t in zip(pred, truth) if p and t)
    fp = sum(1 for p, t in zip(pred, truth) if p and not t)
    fn = sum(1 for p, t in zip(pred, truth) if t and not p)
    if tp + fp + fn == 0:
        return 1.0
    if average == "micro":
        return 2 * tp / (2 * tp + fp + fn)
    if average == "macro":
        return tp / (tp + fp + fn)
    raise ValueError(f"unknown average {average!r} (micro or macro)")


def f1_reward(completion: str, truth: Sequence[int], average: str = "micro") -> float:
    t = _truth(truth)
    pred = _formatted_prediction(completion, len(t))
    return 0.0 if pred is None else f1_score_one(pred, t, average)


def _macro_f1(tp: list[int], fp: list[int], fn: list[int], size: int) -> float:
    scores = [2 * a / (2 * a + b + c) for a, b, c in zip(tp, fp, fn) if a + b + c > 0]
    if scores:
        return sum(scores) / len(scores)
    return 1.0 if size > 0 else 0.0


def group_f1_rewards(
    completions: Sequence[str],
    truths: Sequence[Sequence[int]],
    groups: Sequence | None = None,
    invalid: float = -1.0,
) -> list[float]:
    """Rewards from the batch's macro-F1 (the study's metric), credited to each completion.

    Within each group (rows with the same `groups` key, e.g. the task; one group when None), macro-F1
    M is computed over all rows' predictions (an invalid label counts as predicting nothing; labels
    with no positive on either side are left out). Completion i gets its leave-one-out contribution
    scaled by the group size and clipped: clip(B * (M(all) - M(all without i)), -1, 1); with one row,
    M(that row). An invalid label (or a completion without the format) gets `invalid` (-1.0: never better than a valid answer). Because
    M is a macro average over labels, a correct rare label moves it as much as a common one: always
    answering the majority vector lowers the batch F1 of rare labels and is not paid.
    """
    size = len(completions)
    keys = list(groups) if groups is not None else [None] * size
    out = [0.0] * size
    by_group: dict = {}
    for i, k in enumerate(keys):
        try:
            by_group.setdefault(k, []).append(i)
        except TypeError:  # unhashable key
            by_group.setdefault(repr(k), []).append(i)
    for idx in by_group.values():
        n = len(_truth(truths[idx[0]]))
        rows = []
        for i in idx:
            t = _truth(truths[i])
            if len(t) != n:
                rows.append((i, t, None))
                continue
            rows.append((i, t, _formatted_prediction(completions[i], n)))
        tp, fp, fn = [0] * n, [0] * n, [0] * n
        for _, t, p in rows:
            pv = p if p is not None else (0,) * len(t)
            for j in range(min(n, len(t))):
                tp[j] += pv[j] & t[j]
                fp[j] += pv[j] & (1 - t[j])
                fn[j] += (1 - pv[j]) & t[j]
        b = len(rows)
        full = _macro_f1(tp, fp, fn, b)
        for i, t, p in rows:
            if p is None:
                out[i] = float(invalid)
                continue
            tp2, fp2, fn2 = tp[:], fp[:], fn[:]
            for j in range(n):
                tp2[j] -= p[j] & t[j]
                fp2[j] -= p[j] & (1 - t[j])
                fn2[j] -= (1 - p[j]) & t[j]
            loo = _macro_f1(tp2, fp2, fn2, b - 1)
            out[i] = max(-1.0, min(1.0, b * (full - loo))) if b > 1 else full
    return out


# --- chain-of-thought length ---------------------------------------------------------------------
def whitespace_tokens(text: str) -> int:
    """The fallback token count: whitespace-separated pieces."""
    return len(text.split())


def cot_tokens(completion: str, count: TokenCounter | None = None) -> int:
    """Tokens of the think text under `count` (whitespace pieces when None); 0 when the format fails."""
    if not analyse(completion)[0]:
        return 0
    text = think_text(completion)
    if not text:
        return 0
    try:
        k = int((count or whitespace_tokens)(text))
    except Exception:  # noqa: BLE001 - a user's counter must not crash training
        k = whitespace_tokens(text)
    return max(0, k)


def length_value(tokens: int, mode: str = "raw", cap: int = 256, target: int = 128) -> float:
    """The length term: raw (tokens), capped (min(tokens, cap)), norm (min(tokens/target, 1)) or
    target (max(0, 1 - |tokens - target| / target))."""
    if mode == "raw":
        return float(tokens)
    if mode == "capped":
        return float(min(tokens, cap))
    if mode == "norm":
        return min(tokens / target, 1.0) if target > 0 else 0.0
    if mode == "target":
        return max(0.0, 1.0 - abs(tokens - target) / target) if target > 0 else 0.0
    raise ValueError(f"unknown length mode {mode!r} (one of {', '.join(LENGTH_MODES)})")


def length_bounds(mode: str, cap: int = 256, target: int = 128) -> tuple[float, float]:
    return {"raw": (0.0, math.inf), "capped": (0.0, float(cap)), "norm": (0.0, 1.0), "target": (0.0, 1.0)}[mode]


def cot_length_reward(
    completion: str, count: TokenCounter | None = None, mode: str = "raw", cap: int = 256, target: int = 128
) -> float:
    return length_value(cot_tokens(completion, count), mode, cap, target)


def conditional_reward(
    completion: str,
    n: int = 5,
    count: TokenCounter | None = None,
    alpha: float = SEED_ALPHA,
    tau: float = SEED_TAU,
    mode: str = "raw",
    cap: int = 256,
    target: int = 128,
) -> float:
    """stepwise + alpha * length when stepwise >= tau, else stepwise (seed: alpha 0.1, tau 1.0, raw)."""
    s = stepwise_reward(completion, n)
    if s >= tau:
        return s + alpha * cot_length_reward(completion, count, mode, cap, target)
    return s
