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


@settings(max_examples=500, deadline=None)
@given(label=st.one_of(tagged, st.text(max_size=40)), n=st.integers(1, 6))
def test_fast_path_equals_literal_eval(label, n):
    import ast

    try:
        v = ast.literal_eval(label)
        want = isinstance(v, list) and len(v) == n and all(isinstance(x, int) and x in (0, 1) for x in v)
    except Exception:  # noqa: BLE001
        want = False
    assert core.is_valid_onehot(label, n) is want
    strict = core.parse_strict(label, n)
    assert strict is None or want  # strict never accepts what the seed rejects


@settings(max_examples=200, deadline=None)
@given(bits=st.lists(st.integers(0, 1), min_size=1, max_size=8), spaces=st.lists(st.sampled_from(["", " ", "\n"]),
                                                                                 min_size=20, max_size=20))
def test_wellformed_vectors_always_parse(bits, spaces):
    body = ",".join(f"{spaces[i % 20]}{b}{spaces[(i + 1) % 20]}" for i, b in enumerate(bits))
    assert core.parse_onehot(f"[{body}]", len(bits)) == tuple(bits)
