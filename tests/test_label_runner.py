"""The one label runner (tasks/label_runner.py) behind the study's runs and a corpus's: the hashes and
folder names older versions gave (so their folders keep resuming), one context-window check for every
backend, one finisher (scores for rows with references, the label distribution for every run)."""

from __future__ import annotations

import csv
import json

import pytest
from fakeservers import make_backend

from llmscisci.backends.base import Backend, GenParams, Generation
from llmscisci.data.codebook import load_codebook
from llmscisci.data.corpus import CorpusPlan
from llmscisci.data.items import Item, load_items
from llmscisci.paths import bundled_data_dir
from llmscisci.runs import read_jsonl
from llmscisci.tasks.label import LabelSpec, reevaluate, run_label
from llmscisci.tasks.label_stream import run_label_stream

EASY = load_codebook("easy")
# what the runners gave before there was one runner: a run folder made by an older version is found
# again under this name and hash, so it resumes instead of starting over (do not update these to make
# a test pass: a change here strands every existing run folder)
STUDY_FOLDER, STUDY_HASH = "label_easy_structured_openai-gpt-4o-mini_bf213ad2", "bf213ad257454cb0"
CORPUS_FOLDER, CORPUS_HASH = "label_easy_guidelines_openai-gpt-4o-mini_157d4ad5", "157d4ad52865697f"


class Echo(Backend):
    """Answers every item with category 1 (no server)."""

    name = "echo"

    def __init__(self):
        self.sent = 0

    def generate(self, conversations, params=None, schema=None, on_result=None):
        out = []
        for i, _ in enumerate(conversations):
            self.sent += 1
            out.append(Generation(text="[1]", tokens_in=10, tokens_out=2))
            if on_result:
                on_result(i, out[-1])
        return out

    def count_tokens(self, messages):
        return 10


def corpus_file(path, n=7):
    with path.open("w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["id", "abstract", "year"])
        for i in range(n):
            w.writerow([f"w{i}", f"text number {i} about code and data" if i != 2 else "", 2020 + i % 2])
    return path


def test_a_study_run_keeps_the_hash_and_folder_older_versions_gave(tmp_path):
    items = load_items(EASY, data_dir=bundled_data_dir())
    spec = LabelSpec(codebook=EASY, variant="structured", model="openai:gpt-4o-mini",
                     params=GenParams(max_new_tokens=64, seed=2025), shots=2, limit=5, split="test",
                     data_source="bundled")
    run = run_label(spec, items, Echo(), tmp_path, show_progress=False)
    assert (run.path.name, run.config["hash"]) == (STUDY_FOLDER, STUDY_HASH)
    assert len(run.config["items"]) == 5 and len(run.config["shot_examples"]) == 2
    # the study's items are scored, and get the label distribution as a corpus run does
    metrics = run.metrics()
    assert metrics["n_items"] == 5 and metrics["distribution"]["all"]["n"] == 5
    assert not (run.path / "progress.json").exists()  # a resumed study run reads its predictions


def test_a_corpus_run_keeps_the_hash_and_folder_older_versions_gave(tmp_path):
    spec = LabelSpec(codebook=EASY, variant="guidelines", model="openai:gpt-4o-mini",
                     params=GenParams(max_new_tokens=32, seed=2025), limit=6)
    plan = CorpusPlan.open(corpus_file(tmp_path / "corpus.csv"), EASY, text_column="abstract")
    echo = Echo()
    run = run_label_stream(spec, plan, echo, tmp_path / "runs", chunk_size=4, by="year", show_progress=False)
    assert (run.path.name, run.config["hash"]) == (CORPUS_FOLDER, CORPUS_HASH)
    preds = read_jsonl(run.predictions_path)
    # --limit 6 over two chunks (within one, the empty text is written first: it needs no call)
    assert [p["doi"] for p in preds] == ["w2", "w0", "w1", "w3", "w4", "w5"]
    assert echo.sent == 5 and [p["doi"] for p in preds if p.get("empty")] == ["w2"]  # no call for the empty text
    assert all(p["meta"]["year"] in ("2020", "2021") for p in preds)  # a corpus keeps its columns (--by)
    metrics = run.metrics()
    assert metrics["references"] is False and metrics["n"] == 6 and metrics["empty"] == 1
    assert set(metrics["distribution"]["groups"]) == {"2020", "2021"}
    assert json.loads((run.path / "progress.json").read_text())["chunks"] == 2


def test_a_prompt_over_the_context_window_fails_without_a_call_in_study_and_corpus_runs_alike(openai_server, tmp_path):
    """The runner checks every backend's context window (an API model's too) before anything is sent."""
    from llmscisci.prompts.label import build_messages

    backend = make_backend("openai", openai_server)
    long_text = "data and code " * 300
    items = [Item("a", "easy", "short text about code", (1, 0, 0, 0, 0), "train"),
             Item("b", "easy", long_text, (0, 1, 0, 0, 0), "test")]
    spec = LabelSpec(codebook=EASY, variant="guidelines", model="openai:gpt-4o-mini",
                     params=GenParams(max_new_tokens=32))
    # room for the short text's prompt and answer, not for the long one's
    backend.context_length = backend.count_tokens(build_messages(items[0].text, EASY, "guidelines", [])) + 32 + 100
    study = run_label(spec, items, backend, tmp_path / "study", show_progress=False)
    assert openai_server.calls == 1
    with (tmp_path / "c.csv").open("w", newline="") as fh:
        csv.writer(fh).writerows([["id", "abstract"], ["a", items[0].text], ["b", long_text]])
    openai_server.reset()
    corpus = run_label_stream(spec, CorpusPlan.open(tmp_path / "c.csv", EASY, text_column="abstract"), backend,
                              tmp_path / "corpus", show_progress=False)
    assert openai_server.calls == 1  # the long text is never sent
    errors = [{p["doi"]: p["error"] for p in read_jsonl(run.predictions_path)} for run in (study, corpus)]
    assert errors[0] == errors[1]
    assert errors[0]["a"] is None and errors[0]["b"].endswith("tokens exceeds the context window")


def test_eval_gives_the_run_s_own_metrics_for_a_study_run_and_a_corpus_run(tmp_path):
    """`llmscisci eval` goes through the finisher the run ended with."""
    items = [Item(f"10.1/{i}", "easy", f"text {i}", (1, 0, 0, 0, 0), "train") for i in range(4)]
    spec = LabelSpec(codebook=EASY, variant="guidelines", model="echo", params=GenParams(max_new_tokens=8))
    study = run_label(spec, items, Echo(), tmp_path / "s", show_progress=False)
    plan = CorpusPlan.open(corpus_file(tmp_path / "corpus.csv"), EASY, text_column="abstract")
    corpus = run_label_stream(spec, plan, Echo(), tmp_path / "c", chunk_size=3, show_progress=False)
    for run in (study, corpus):
        before = run.metrics()
        again = reevaluate(run.path)
        assert {k: v for k, v in again.items() if k != "diagnostics"} == \
            {k: v for k, v in before.items() if k != "diagnostics"}
    assert study.metrics()["all"]["micro_f1"] == 1.0 and corpus.metrics()["distribution"]["all"]["n"] == 7
