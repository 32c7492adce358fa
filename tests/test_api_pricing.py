"""The price table: data file, prefix matching for dated snapshots, user overrides."""

from __future__ import annotations

import pytest

from llmscisci.backends.pricing import load_table, lookup
from llmscisci.errors import UserError


def test_exact_and_snapshot_matching():
    assert lookup("openai", "gpt-4o-mini").model == "gpt-4o-mini"
    assert lookup("openai", "gpt-4o-mini-2024-07-18").model == "gpt-4o-mini"  # not gpt-4o
    assert lookup("openai", "gpt-4o-2024-08-06").model == "gpt-4o"
    assert lookup("openai", "o3-mini-2025-01-31").model == "o3-mini"
    assert lookup("anthropic", "claude-3-5-sonnet-latest").model == "claude-3-5-sonnet"
    assert lookup("gemini", "gemini-2.0-flash-001").model == "gemini-2.0-flash"
    assert lookup("gemini", "gemini-2.0-flash-lite").model == "gemini-2.0-flash-lite"
    assert lookup("openai", "gpt-4omni") is None and lookup("openai", "llama3") is None


def test_cost():
    p = lookup("openai", "gpt-4o-mini")
    assert p.cost(1_000_000, 1_000_000) == pytest.approx(p.input + p.output)
    assert p.cost(0, 0) == 0.0
    assert lookup("gemini", "gemini-2.0-flash").context == 1048576


def test_user_override(tmp_path):
    f = tmp_path / "prices.toml"
    f.write_text('[openai."gpt-4o-mini"]\ninput = 1.0\n\n[openai."my-model"]\ninput = 2\noutput = 3\ncontext = 4096\n')
    p = lookup("openai", "gpt-4o-mini", f)
    assert p.input == 1.0 and p.output == lookup("openai", "gpt-4o-mini").output  # merged row
    m = lookup("openai", "my-model-v2", f)
    assert (m.model, m.context) == ("my-model", 4096) and m.cost(1000, 1000) == pytest.approx(0.005)
    assert "my-model" not in load_table()["openai"]


@pytest.mark.parametrize("text", ['[openai."x"]\ninput = "cheap"\n', "not toml [", '[openai]\nx = 3\n'])
def test_bad_override_is_a_user_error(tmp_path, text):
    f = tmp_path / "p.toml"
    f.write_text(text)
    with pytest.raises(UserError):
        lookup("openai", "x", f)


def test_missing_override_file(tmp_path):
    with pytest.raises(UserError):
        lookup("openai", "gpt-4o", tmp_path / "nope.toml")
