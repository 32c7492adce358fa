"""Property tests: on any string every reward returns a float within its stated bounds and never raises;
the linear format check agrees with the seed's regular expression."""

from __future__ import annotations

import math

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from llmscisci.rewards import core
from llmscisci.rewards.registry import REWARDS, RewardContext, build_mix

PIECES = ["<think>", "</think>", "<label>", "</label>", "[", "]", ",", " ", "\n", "0", "1", "2", "1.0", "True",
          "'1'", "<", ">", "/", "think", "label", "é", "中", "#", "(", ")", "-", "+"]
tagged = st.lists(st.sampled_from(PIECES), max_size=40).map("".join)
anything = st.one_of(st.text(max_size=200), tagged, st.lists(st.one_of(st.text(max_size=5), st.sampled_from(PIECES)),
                                                              max_size=30).map("".join))
truths = st.lists(st.integers(0, 1), min_size=5, max_size=5)

ALL = ",".join(REWARDS)
CTX = RewardContext(prevalence=(0.6, 0.4, 0.6, 0.4, 0.05))
MIX = build_mix(ALL, CTX)
SETTINGS = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def _in_bounds(v, lo, hi) -> bool:
    return isinstance(v, float) and not math.isnan(v) and lo - 1e-9 <= v <= hi + 1e-9


@SETTINGS
@given(completion=anything, truth=truths)
def test_every_reward_is_a_float_within_its_bounds(completion, truth):
    scores = MIX.score([completion], labels=[truth], task=["easy"])
    for t in MIX.terms:
        assert _in_bounds(scores[t.name][0], *t.bounds), (t.name, scores[t.name][0], t.bounds)
    lo, hi = MIX.bounds()
    assert lo <= scores["total"][0] <= hi


@SETTINGS
@given(completion=anything, truth=truths)
def test_conversational_completions_score_like_strings(completion, truth):
    plain = MIX.score([completion], labels=[truth])
    conv = MIX.score([[{"role": "assistant", "content": completion}]], labels=[truth])
    assert plain == conv


@SETTINGS
@given(completions=st.lists(anything, min_size=1, max_size=12), data=st.data())
def test_group_f1_is_within_bounds_for_any_batch(completions, data):
    ts = [data.draw(truths) for _ in completions]
    groups = [data.draw(st.sampled_from(["easy", "difficult"])) for _ in completions]
    for v in core.group_f1_rewards(completions, ts, groups):
        assert isinstance(v, float) and -1.0 <= v <= 1.0


@settings(max_examples=1000, deadline=None)
@given(text=tagged)
def test_format_check_equals_the_seed_regex(text):
    assert core.format_matches(text) == core.format_matches_regex(text)


@settings(max_examples=500, deadline=None)
@given(text=anything)
def test_extraction_equals_the_seed_split(text):
    assert core.label_text(text) == text.split("<label>")[-1].split("</label>")[0].strip()
    assert core.think_text(text) == text.split("<think>")[-1].split("</think>")[0].strip()


def _slow_path(label: str, n: int) -> tuple[int, ...] | None:
    """The seed's test, literally: ast.literal_eval, a list of n ints each 0 or 1 (bools pass)."""
    import ast

    try:
        v = ast.literal_eval(label)
    except Exception:  # noqa: BLE001
        return None
    if isinstance(v, list) and len(v) == n and all(isinstance(x, int) and x in (0, 1) for x in v):
        return tuple(int(x) for x in v)
    return None


# whitespace of every kind: ASCII, control characters (\x0b, \x1c-\x1f, \x85), Unicode space separators
# (no-break space, en quad..., ideographic space), line/paragraph separators, zero-width characters
SPACES = [" ", "\t", "\n", "\r", "\r\n", "\x0c", "\x0b", "\x1c", "\x1d", "\x1e", "\x1f", "\x85", "\xa0",
          "\u1680", "\u2000", "\u2007", "\u200a", "\u2028", "\u2029", "\u202f", "\u205f", "\u3000", "\u200b",
          "\ufeff", "\x00", "\\\n"]
any_char = st.characters(codec=None)  # every code point but surrogates: control and separator characters too
space = st.one_of(st.sampled_from(SPACES), st.characters(categories=["Zs", "Zl", "Zp", "Cc", "Cf"]),
                  st.text(any_char, max_size=2))
LIST_PIECES = ["[", "]", ",", "0", "1", "True", "False", "#", "1.0", "0x1", "+1", "(", ")"]
near_lists = st.lists(st.one_of(st.sampled_from(LIST_PIECES), space), max_size=24).map("".join)


@st.composite
def spaced_lists(draw):
    """A 0/1 list with arbitrary text (mostly whitespace of any kind) around and between its parts."""
    bits = draw(st.lists(st.integers(0, 1), min_size=1, max_size=6))
    gap = st.one_of(st.just(""), space, st.text(any_char, max_size=3))
    parts = [draw(gap), "["]
    for k, b in enumerate(bits):
        parts += [draw(gap), str(b), draw(gap)]
        if k < len(bits) - 1:
            parts.append(",")
    parts += [draw(st.sampled_from(["", ","])), draw(gap), "]", draw(gap)]
    return "".join(parts), len(bits)


@settings(max_examples=2000, deadline=None)
@given(label=st.one_of(tagged, st.text(max_size=40), st.text(any_char, max_size=40), near_lists),
       n=st.integers(1, 6))
def test_fast_path_equals_literal_eval(label, n):
    core.clear_caches()
    assert core.parse_onehot(label, n) == _slow_path(label, n)
    strict = core.parse_strict(label, n)
    assert strict is None or _slow_path(label, n) is not None  # strict never accepts what the seed rejects


@settings(max_examples=3000, deadline=None)
@given(case=spaced_lists(), extra=st.integers(-1, 1))
def test_fast_path_equals_literal_eval_on_lists_with_any_whitespace(case, extra):
    label, n = case
    core.clear_caches()
    for k in {n, max(1, n + extra)}:
        assert core.parse_onehot(label, k) == _slow_path(label, k), (label, k)
        # and the fast path alone never accepts what the literal parser rejects
        if core._fast_list_re(k).fullmatch(label):
            assert _slow_path(label, k) is not None, (label, k)


@settings(max_examples=200, deadline=None)
@given(bits=st.lists(st.integers(0, 1), min_size=1, max_size=8), spaces=st.lists(st.sampled_from(["", " ", "\n"]),
                                                                                 min_size=20, max_size=20))
def test_wellformed_vectors_always_parse(bits, spaces):
    body = ",".join(f"{spaces[i % 20]}{b}{spaces[(i + 1) % 20]}" for i, b in enumerate(bits))
    assert core.parse_onehot(f"[{body}]", len(bits)) == tuple(bits)
