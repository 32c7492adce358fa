"""The six seed rewards give the seed's own values on every completion of its reward vectors.

`tests/fixtures/seed/reward_vectors.jsonl` is a copy of the seed's vectors (each completion with the
value the seed's reward code gives it, `hamming` null where the seed raises), so the test runs in a
clone without the shared folder; a second test checks the copy against the shared original."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from llmscisci.rewards import core
from llmscisci.rewards.registry import RewardContext, build_mix

REPO = Path(__file__).resolve().parents[1]
FIXTURE = REPO / "tests" / "fixtures" / "seed" / "reward_vectors.jsonl"
SEED_REWARDS = ["format", "label", "stepwise", "hamming", "cot_length", "conditional"]
# reward name -> field of the vectors file (the length rewards counted in whitespace words)
FIELD = {"cot_length": "cot_length_words", "conditional": "conditional_words"}


def shared_folder() -> Path:
    """The shared folder next to the repository (or next to $LLMSCISCI_DATA when that is set)."""
    env = os.environ.get("LLMSCISCI_DATA")
    return Path(env).parent if env else REPO.parent / "shared"


def seed_value(row: dict, name: str) -> float:
    value = row[FIELD.get(name, name)]
    return 0.0 if value is None else float(value)  # the seed's hamming raises there: paid 0


def load_rows() -> list[dict]:
    # split on "\n" only: str.splitlines also splits on \x1c, \x85, \u2028... inside completions
    return [json.loads(line) for line in FIXTURE.read_text("utf-8").split("\n") if line]


def test_the_fixture_is_the_seeds_file():
    shared = shared_folder() / "seed" / "reward_vectors.jsonl"
    if not shared.is_file():
        pytest.skip(f"no shared seed vectors at {shared}")
    assert FIXTURE.read_bytes() == shared.read_bytes()


def test_seed_rewards_match_the_seed_on_every_vector():
    rows = load_rows()
    assert len(rows) == 756
    mix = build_mix(",".join(SEED_REWARDS), RewardContext(count_tokens=core.whitespace_tokens, token_method="words"))
    scores = mix.score([r["completion"] for r in rows], labels=[r["truth"] for r in rows])
    mismatches = {}
    for name in SEED_REWARDS:
        bad = [r["id"] for r, got in zip(rows, scores[name]) if got != pytest.approx(seed_value(r, name), abs=1e-9)]
        mismatches[name] = bad
    assert {k: len(v) for k, v in mismatches.items()} == {k: 0 for k in SEED_REWARDS}, mismatches


def test_the_vectors_cover_what_the_seed_gates():
    # the file exercises both sides of every rule the test above checks
    rows = load_rows()
    assert any(r["hamming_raises"] for r in rows) and any(not r["hamming_raises"] for r in rows)
    unformatted_valid_list = [r for r in rows if r["format"] == 0 and core.is_valid_onehot(core.label_text(r["completion"]))]
    assert unformatted_valid_list and all(r["stepwise"] == 0 for r in unformatted_valid_list)
    # a label the literal parser rejects only because of its whitespace (no-break space, \x0b...)
    assert any(r["format"] == 1 and r["label"] == 0 and r["id"].startswith("ws") for r in rows)


def test_the_benchmarks_seed_style_side_gives_the_seeds_values():
    import importlib.util

    spec = importlib.util.spec_from_file_location("bench_rewards", REPO / "bench" / "rewards.py")
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    assert bench.check_seed_side(FIXTURE) == 756
