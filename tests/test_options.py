"""Option errors are found before anything heavy happens: each is one line on stderr with exit 2, and
the model loader is never called (it raises here if it is)."""

from __future__ import annotations

import json

import pytest
from console import run_console

from llmscisci.backends import registry
from llmscisci.backends.base import Backend, Generation, GenParams


class LoadedModel(AssertionError):
    pass


@pytest.fixture
def no_model(monkeypatch):
    def refuse(name, options=None):
        raise LoadedModel(f"the model {name} was loaded before the options were checked")

    monkeypatch.setattr(registry, "load_backend", refuse)


def _one_line(err: str) -> str:
    lines = [x for x in err.strip().splitlines() if x.strip() and not x.startswith("WARNING")]
    assert len(lines) == 1 and lines[0].startswith("error:"), err
    return lines[0]


@pytest.mark.parametrize("args,needle", [
    (["--limit", "0"], "--limit 0: must be at least 1"),
    (["--split", "nonsense"], "unknown --split 'nonsense'"),
    (["--shots", "-1"], "--shots -1: must be 0 or more"),
    (["--shots", "100000"], "--shots 100000: only"),
    (["--max-new-tokens", "0"], "--max-new-tokens 0: must be at least 1"),
    (["--temperature", "-0.5"], "--temperature -0.5"),
    (["--variant", "bogus"], "bogus"),
    (["--batch-size", "0"], "--batch-size"),
    (["--chat-template", "chatml"], "--chat-template"),
    (["--split", "test", "--limit", "1", "--task", "nope.toml"], "file not found: nope.toml"),
])
def test_label_option_errors_come_before_the_model(args, needle, data_dir, capsys, monkeypatch, no_model, tmp_path):
    code, out, err = run_console(["label", "--task", "easy", "--data-dir", data_dir, "--out", tmp_path, *args],
                                 capsys, monkeypatch)
    assert code == 2 and needle in _one_line(err), err


@pytest.mark.parametrize("suffix", [".jsonl", ".parquet"])
def test_input_format_is_read_by_content_not_name(suffix, tmp_path, capsys, monkeypatch, no_model):
    src = tmp_path / f"corpus{suffix}"
    src.write_text('{"id": "a", "easy": "text"}\n', "utf-8")
    code, out, err = run_console(["label", "--task", "easy", "--input", src, "--out", tmp_path / "runs",
                                  "--model", "openai:gpt-4o-mini", "--dry-run"], capsys, monkeypatch)
    assert code == 0, err
    assert "jsonl, 1 items" in err and "items: 1" in out and not (tmp_path / "runs").exists()


class FakeBackend(Backend):
    context_length = None

    def generate(self, conversations, params: GenParams = GenParams(), schema=None, on_result=None):
        gens = []
        for i, _conv in enumerate(conversations):
            gen = Generation(text=json.dumps({f: j == 0 for j, f in enumerate(schema.model_fields)}))
            if on_result:
                on_result(i, gen)
            gens.append(gen)
        return gens

    def count_tokens(self, messages) -> int:
        return 10


@pytest.mark.parametrize("args,flag", [
    (["--variant", "icl"], "--variant"),
    (["--model", "other-model"], "--model"),
    (["--limit", "3"], "--limit"),
    (["--seed", "7"], "--seed"),
    (["--max-new-tokens", "9"], "--max-new-tokens"),
])
def test_resume_with_a_conflicting_option_is_an_error(args, flag, data_dir, tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(registry, "load_backend", lambda name, options=None: FakeBackend())
    code, out, err = run_console(["label", "--task", "easy", "--data-dir", data_dir, "--limit", "2",
                                  "--out", tmp_path / "runs"], capsys, monkeypatch)
    assert code == 0, err
    (run,) = (tmp_path / "runs").iterdir()
    monkeypatch.setattr(registry, "load_backend", lambda name, options=None: (_ for _ in ()).throw(LoadedModel()))
    code, out, err = run_console(["label", "--resume", run, *args], capsys, monkeypatch)
    line = _one_line(err)
    assert code == 2 and flag in line and "--resume keeps the run's configuration" in line
    # the same values as the run are not a conflict
    monkeypatch.setattr(registry, "load_backend", lambda name, options=None: FakeBackend())
    code, out, err = run_console(["label", "--resume", run, "--variant", "structured", "--limit", "2"],
                                 capsys, monkeypatch)
    assert code == 0, err
