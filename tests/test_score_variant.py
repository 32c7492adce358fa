"""The `score` prompt variant: labels from yes/no log-odds (local models, OpenAI-compatible logprobs),
contextual calibration and thresholds fitted on a calibration source only."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from llmscisci.backends.base import BackendOptions
from llmscisci.backends.local import LocalBackend
from llmscisci.backends.models import load
from llmscisci.data.codebook import load_codebook
from llmscisci.prompts import label as prompts

TEXTS = [
    "The code was available and easy to run. Hyperparameters were given in the paper.",
    "Datasets, pretrained models and checkpoints were provided by the authors.",
    "The paper was clearly written; the method was easy to follow.",
]


@pytest.fixture(scope="module")
def loaded(tiny_model_dir):
    return load(str(tiny_model_dir), BackendOptions(device="cpu"))


def reference_log_odds(backend: LocalBackend, conv) -> float:
    """One conversation, no padding, no cache: a plain forward pass and the last position's logits."""
    ids = torch.tensor([backend.prompt_ids(conv)])
    with torch.inference_mode():
        logp = torch.log_softmax(backend.model(input_ids=ids).logits[0, -1].float(), -1)
    yes, no = backend.answer_token_ids()
    return float(torch.logsumexp(logp[yes], -1) - torch.logsumexp(logp[no], -1))


def test_local_scores_match_plain_forward_with_and_without_prefix_cache(loaded):
    cb = load_codebook("easy")
    convs = [c for t in TEXTS for c in prompts.item_score_messages(t, cb, "score")]
    for kw in ({}, {"prefix_cache": False}):
        be = LocalBackend("tiny", BackendOptions(device="cpu", batch_size=3), loaded=loaded, **kw)
        seen = []
        gens = be.score_yes_no(convs, on_result=lambda i, g: seen.append(i))
        assert sorted(seen) == list(range(len(convs)))
        expected = [reference_log_odds(be, c) for c in convs]
        assert [g.extra["log_odds"] for g in gens] == pytest.approx(expected, abs=1e-4)
        assert all(g.error is None and g.text in ("yes", "no") for g in gens)
    yes, no = be.answer_token_ids()
    assert yes and no and not set(yes) & set(no)


def tiny_label(tiny_model_dir, tmp_path, *args):
    from typer.testing import CliRunner

    from llmscisci.cli import app

    return CliRunner().invoke(app, ["label", "--task", "easy", "--variant", "score", "--model", str(tiny_model_dir),
                                    "--device", "cpu", "--out", str(tmp_path), "--json", *args])


def test_score_run_gives_valid_labels_for_every_item_and_keeps_log_odds(tiny_model_dir, tmp_path):
    res = tiny_label(tiny_model_dir, tmp_path, "--limit", "4")
    assert res.exit_code == 0, res.output
    run_dir = next(tmp_path.glob("label_easy_score_*"))
    preds = [json.loads(line) for line in (run_dir / "predictions.jsonl").read_text().splitlines()]
    cb = load_codebook("easy")
    scored = [cb.shorts[k] for k in prompts.score_categories(cb)]
    assert len(preds) == 4
    for p in preds:
        assert p["valid"] and p["error"] is None and len(p["labels"]) == cb.n
        assert set(p["scores"]) == set(scored) == set(json.loads(p["raw"])["log_odds"])
    cfg = json.loads((run_dir / "config.json").read_text())
    cal = cfg["calibration"]
    assert cal["categories"] == scored and len(cal["content_free"]) == len(scored)
    assert cal["thresholds"] == [0.0] * len(scored) and cal["source"] is None
    # calibrated = raw - content-free, labels = calibrated > threshold (none by the label policy)
    for p in preds:
        raw = json.loads(p["raw"])["log_odds"]
        for j, short in enumerate(scored):
            assert p["scores"][short] == pytest.approx(raw[short] - cal["content_free"][j], abs=1e-3)
            assert p["labels"][cb.shorts.index(short)] == int(p["scores"][short] > 0)
    # eval (even --reparse: there is no text to parse) keeps the labels and their metrics
    from typer.testing import CliRunner

    from llmscisci.cli import app

    before = json.loads((run_dir / "metrics.json").read_text())["all"]
    res = CliRunner().invoke(app, ["eval", str(run_dir), "--reparse", "--json"])
    assert res.exit_code == 0, res.output
    assert json.loads((run_dir / "metrics.json").read_text())["all"] == before


# --------------------------------------------------------------------------- calibration (a fake scorer)
class HashScorer:
    """A scoring backend without a model: each question's log-odds is a fixed function of its text."""

    name = "hash-scorer"
    can_score = True
    context_length = None

    def __init__(self):
        self.questions = 0

    def score_yes_no(self, conversations, on_result=None):
        import zlib

        from llmscisci.backends.base import Generation

        out = []
        for i, conv in enumerate(conversations):
            self.questions += 1
            lo = (zlib.crc32(conv[-1]["content"].encode()) % 6001) / 1000 - 3.0
            out.append(Generation(text="yes" if lo > 0 else "no", extra={"log_odds": lo}))
            if on_result:
                on_result(i, out[-1])
        return out

    def describe(self):
        return {"name": self.name}


def bundled_copy(tmp_path, flip: bool):
    """A data folder: the bundled data, with every `easy` reference label flipped when `flip`."""
    import shutil

    import pandas as pd

    from llmscisci.paths import bundled_data_dir

    folder = tmp_path / ("flipped" if flip else "same")
    shutil.copytree(bundled_data_dir(), folder)
    ref = folder / "labels" / "reference.csv"
    df = pd.read_csv(ref, dtype=str)
    if flip:
        easy = df["task"] == "easy"
        df.loc[easy, "labels"] = [json.dumps([1 - v for v in json.loads(x)]) for x in df.loc[easy, "labels"]]
        df.loc[easy, "label_names"] = ""
    df.to_csv(ref, index=False)
    return folder


def run_score(items, out, calibrate, backend=None):
    from llmscisci.backends.base import GenParams
    from llmscisci.runs import RunFolder
    from llmscisci.tasks.label import LabelSpec, run_label

    spec = LabelSpec(codebook=load_codebook("easy"), variant="score", model="hash", params=GenParams(max_new_tokens=1),
                     calibrate=calibrate, data_source="test")
    run = run_label(spec, items, backend or HashScorer(), out, show_progress=False)
    return RunFolder(run.path)


def test_thresholds_are_fitted_on_the_calibration_source_only(tmp_path):
    from dataclasses import replace

    from llmscisci.data.items import load_items
    from llmscisci.paths import bundled_data_dir

    cb = load_codebook("easy")
    items = [it for it in load_items(cb, data_dir=bundled_data_dir()) if it.labels is not None][:8]
    flipped_targets = [replace(it, labels=tuple(1 - v for v in it.labels)) for it in items]
    a = run_score(items, tmp_path / "a", "bundled").config["calibration"]
    b = run_score(flipped_targets, tmp_path / "b", "bundled").config["calibration"]
    assert a["source"] == "bundled" and a["n_items"] == 70
    assert a["thresholds"] == b["thresholds"]  # the target items' labels play no part
    assert any(t != 0.0 for t in a["thresholds"])  # fitted, not the default
    # the source's labels do: the same texts with flipped reference labels give other thresholds
    other = run_score(items, tmp_path / "c", str(bundled_copy(tmp_path, flip=True))).config["calibration"]
    assert other["thresholds"] != a["thresholds"]
    # and the source is part of the run's identity
    assert run_score(items, tmp_path / "d", None).config["hash"] != run_score(items, tmp_path / "e", "bundled").config["hash"]


def test_target_items_that_are_calibration_items_are_scored_once(tmp_path):
    from llmscisci.data.items import load_items
    from llmscisci.paths import bundled_data_dir

    cb = load_codebook("easy")
    items = [it for it in load_items(cb, data_dir=bundled_data_dir()) if it.labels is not None]
    scorer = HashScorer()
    run = run_score(items, tmp_path, "bundled", scorer)
    k = len(prompts.score_categories(cb))
    assert scorer.questions == k * (len(items) + 1)  # + the content-free passage
    assert len(run.predictions()) == len(items)


def test_fit_threshold_maximises_f1_and_keeps_default_without_positives():
    from llmscisci.metrics.thresholds import apply_thresholds, cross_fit, fit_threshold, fit_thresholds

    scores = [-2.0, -1.0, 0.5, 1.0, 3.0]
    assert fit_threshold(scores, [0, 0, 0, 1, 1]) == pytest.approx(0.75)  # between 0.5 and 1.0
    assert fit_threshold(scores, [0, 0, 0, 0, 0], default=0.0) == 0.0
    assert fit_threshold(scores, [1, 1, 1, 1, 1]) < -2.0  # everything positive
    s = np.array([[0.1, -5.0], [0.2, 5.0], [-0.3, 4.0], [0.4, -4.0]])
    y = np.array([[0, 0], [1, 1], [0, 1], [1, 0]])
    th = fit_thresholds(s, y)
    assert (apply_thresholds(s, th) == y).all()
    pred, fitted = cross_fit(s, y, [0, 0, 1, 1])
    assert set(fitted) == {0, 1} and pred.shape == y.shape
    # fold 1's thresholds come from fold 0's items only: changing fold 1's labels leaves them unchanged
    y2 = y.copy()
    y2[2:] = 1 - y2[2:]
    assert cross_fit(s, y2, [0, 0, 1, 1])[1][1] == fitted[1]
    with pytest.raises(ValueError, match="shape"):
        fit_thresholds(s, y[:, :1])


# --------------------------------------------------------------------------- APIs and the command line
def test_openai_logprobs_give_log_odds_and_a_server_without_them_an_error(monkeypatch, tmp_path):
    from fakeservers import make_backend, make_server, set_keys

    set_keys(monkeypatch)
    convs = [[{"role": "user", "content": "The code was available. Does code apply? Answer yes or no."}],
             [{"role": "user", "content": "Nothing helped. Does code apply? Answer yes or no."}]]
    with make_server("openai") as srv:
        be = make_backend("openai", srv, cache_path=tmp_path / "cache.sqlite")
        gens = be.score_yes_no(convs)
        body = srv.requests[-1]["body"]
        assert body["max_tokens"] == 1 and body["logprobs"] is True and body["top_logprobs"] == 20
        # the fake lists Yes (log p) and " no" (-1.0): log-odds = log p + 1
        assert [g.extra["log_odds"] for g in gens] == pytest.approx([-0.1 + 1.0, -3.0 + 1.0])
        assert [g.text for g in gens] == ["yes", "no"] and all(g.error is None for g in gens)
        again = be.score_yes_no(convs)  # from the response cache, log-odds included
        assert all(g.cached or g.extra.get("cached_seconds") is not None for g in again)
        assert [g.extra["log_odds"] for g in again] == pytest.approx([0.9, -2.0])
        assert not be.generate(convs[:1])[0].extra.get("log_odds")  # plain generation is a separate cache entry
        srv.with_logprobs = False
        be2 = make_backend("openai", srv)
        bad = be2.score_yes_no(convs[:1])[0]
        assert bad.error and "log-probabilities" in bad.error


@pytest.mark.parametrize("model", ["anthropic:claude-3-5-sonnet-latest", "gemini:gemini-2.0-flash"])
def test_providers_without_logprobs_are_refused_in_one_line_before_anything_runs(model, tmp_path, capsys, monkeypatch):
    from console import run_console

    code, out, err = run_console(["label", "--task", "easy", "--variant", "score", "--model", model,
                                  "--out", tmp_path / "runs"], capsys, monkeypatch)
    assert code != 0 and "log-probabilities" in err and "Traceback" not in err
    assert len([line for line in err.strip().splitlines() if line.strip()]) == 1
    assert not (tmp_path / "runs").exists()


@pytest.mark.parametrize("args, message", [
    (["--variant", "structured", "--calibrate", "bundled"], "--calibrate applies to --variant score"),
    (["--variant", "score", "--calibrate", "no/such/file.csv"], "--calibrate no/such/file.csv: not found"),
    (["--variant", "score", "--shots", "2"], "asks without examples"),
    (["--variant", "score", "--model", "baseline:some/dir"], "needs a language model"),
    (["--variant", "score", "--model", "openai:gpt-4o-mini", "--batch"], "scores live"),
])
def test_score_options_are_checked_before_loading(args, message, tmp_path, capsys, monkeypatch):
    from console import run_console

    code, out, err = run_console(["label", "--task", "easy", "--out", tmp_path / "runs", *args], capsys, monkeypatch)
    assert code != 0 and message in err and "Traceback" not in err


def test_score_dry_run_counts_one_call_per_question(tmp_path, capsys, monkeypatch):
    from console import run_console

    code, out, err = run_console(["label", "--task", "easy", "--variant", "score", "--model", "openai:gpt-4o-mini",
                                  "--dry-run", "--json", "--out", tmp_path / "runs"], capsys, monkeypatch)
    assert code == 0, err
    plan = json.loads(out)["dry_run"]
    k = len(prompts.score_categories(load_codebook("easy")))
    assert plan["n_items"] == 70 * k and plan["max_new_tokens"] == 1 and plan["cost_usd_max"] > 0
    assert "Answer yes or no." in plan["first_messages"][-1]["content"]
    assert not (tmp_path / "runs").exists()


def test_score_on_a_streamed_corpus_labels_every_item_and_resumes_with_its_calibration(tmp_path):
    from pathlib import Path

    from llmscisci.backends.base import GenParams
    from llmscisci.data.corpus import CorpusPlan
    from llmscisci.tasks.label import LabelSpec
    from llmscisci.tasks.label_stream import run_label_stream

    fix = Path(__file__).parent / "fixtures" / "corpus"
    cb = load_codebook(str(fix / "open_science.toml"))
    plan = CorpusPlan.open(fix / "openalex_works.jsonl", cb)
    spec = LabelSpec(codebook=cb, variant="score", model="hash", params=GenParams(max_new_tokens=1), limit=30)
    scorer = HashScorer()
    run = run_label_stream(spec, plan, scorer, tmp_path, chunk_size=10, show_progress=False)
    preds = run.predictions()
    k = len(prompts.score_categories(cb))
    assert len(preds) == 30 and all(p.valid for p in preds)
    scored = [p for p in preds if not p.empty]
    assert scored and all(set(p.scores) == {cb.shorts[j] for j in prompts.score_categories(cb)} for p in scored)
    assert scorer.questions == k * (len(scored) + 1)
    cal = run.config["calibration"]
    again = HashScorer()
    run_label_stream(spec, plan, again, tmp_path, chunk_size=10, show_progress=False)
    assert again.questions == 0 and run.config["calibration"] == cal  # resumed: nothing asked twice


@pytest.mark.slow
def test_score_with_the_embedded_model_on_three_reports(embedded_model_dir, data_dir, tmp_path):
    from typer.testing import CliRunner

    from llmscisci.cli import app

    res = CliRunner().invoke(app, ["label", "--task", "easy", "--variant", "score", "--limit", "3",
                                   "--data-dir", str(data_dir), "--out", str(tmp_path), "--json"])
    assert res.exit_code == 0, res.output
    run_dir = next(tmp_path.glob("label_easy_score_smollm2-135m_*"))
    preds = [json.loads(line) for line in (run_dir / "predictions.jsonl").read_text().splitlines()]
    assert len(preds) == 3 and all(p["valid"] and len(p["scores"]) == 4 for p in preds)
    # the log-odds depend on the passage: three reports, three different score vectors
    assert len({tuple(p["scores"].values()) for p in preds}) == 3


def test_resume_keeps_the_calibration_source(tmp_path, capsys, monkeypatch):
    from console import run_console

    from llmscisci.runs import RunFolder

    run_dir = tmp_path / "run"
    RunFolder(run_dir).path.mkdir()
    cfg = {"kind": "label", "task": "easy", "variant": "score", "model": "smollm2-135m", "calibrate": "bundled",
           "codebook": load_codebook("easy").model_dump(),
           "params": {"max_new_tokens": 1, "temperature": 0.0, "seed": 2025}}
    (run_dir / "config.json").write_text(json.dumps(cfg))
    (run_dir / "predictions.jsonl").write_text("")
    code, out, err = run_console(["label", "--resume", run_dir, "--calibrate", str(tmp_path)], capsys, monkeypatch)
    assert code != 0 and "--calibrate" in err and "differs" in err


def test_calibration_sources_bundled_folder_and_coded_file(tmp_path):
    import pandas as pd

    from llmscisci.errors import UserError
    from llmscisci.tasks.score import calibration_items

    cb = load_codebook("easy")
    bundled = calibration_items(cb, "bundled")
    assert len(bundled) == 70 and all(it.labels is not None for it in bundled)
    assert len(calibration_items(cb, str(bundled_copy(tmp_path, flip=False)))) == 70
    rows = [{"doi": it.doi, "easy": it.text, **dict(zip(cb.shorts, it.labels))} for it in bundled[:12]]
    coded = tmp_path / "coded.csv"
    pd.DataFrame(rows).to_csv(coded, index=False)
    from_file = calibration_items(cb, str(coded))
    assert [it.labels for it in from_file] == [it.labels for it in bundled[:12]]
    with pytest.raises(UserError, match="not `bundled`"):
        calibration_items(cb, str(tmp_path / "missing.csv"))


def test_score_is_a_grid_variant(tmp_path, data_dir, monkeypatch):
    from typer.testing import CliRunner

    from llmscisci.backends import registry
    from llmscisci.cli import app

    scorer = HashScorer()
    monkeypatch.setattr(registry, "load_backend", lambda name, options=None: scorer)
    out = tmp_path / "grid"
    cfg = tmp_path / "g.toml"
    cfg.write_text(f'name = "t"\nout = "{out}"\ntasks = ["easy"]\nvariants = ["structured", "score"]\n'
                   'models = ["smollm2-135m"]\nlimit = 3\n', encoding="utf-8")
    res = CliRunner().invoke(app, ["grid", str(cfg), "--data-dir", str(data_dir), "--dry-run"])
    assert res.exit_code == 0, res.output
    assert "2 cells" in res.output and "15 model calls" in res.output  # 3 answers + 3 x 4 questions
    cfg.write_text(cfg.read_text().replace('"structured", ', ""), encoding="utf-8")
    res = CliRunner().invoke(app, ["grid", str(cfg), "--data-dir", str(data_dir)])
    assert res.exit_code == 0, res.output
    (run_dir,) = out.glob("**/label_easy_score_*")
    preds = [json.loads(line) for line in (run_dir / "predictions.jsonl").read_text().splitlines()]
    assert len(preds) == 3 and all(p["valid"] and p["scores"] for p in preds)
    assert scorer.questions == 4 * 4  # 3 reports + the content-free passage


def test_training_commands_refuse_the_score_variant(tmp_path, capsys, monkeypatch):
    from console import run_console

    from llmscisci.errors import UserError
    from llmscisci.train.common import label_prompt

    code, out, err = run_console(["dpo", "build", "--variant", "score", "--out", tmp_path / "prefs"], capsys, monkeypatch)
    assert code != 0 and "labels by likelihood" in err and not (tmp_path / "prefs").exists()
    with pytest.raises(UserError, match="labels by likelihood"):
        label_prompt(None, load_codebook("easy"), "score")


def test_a_corpus_run_calibrated_on_the_study_data(tiny_model_dir, tmp_path):
    import pandas as pd

    corpus = tmp_path / "mine.csv"
    pd.DataFrame({"doi": ["a", "b", "c"], "easy": TEXTS}).to_csv(corpus, index=False)
    res = tiny_label(tiny_model_dir, tmp_path / "runs", "--input", str(corpus), "--calibrate", "bundled",
                     "--batch-size", "16")
    assert res.exit_code == 0, res.output
    run_dir = next((tmp_path / "runs").glob("label_easy_score_*"))
    cfg = json.loads((run_dir / "config.json").read_text())
    assert cfg["calibrate"] == "bundled" and cfg["calibration"]["source"] == "bundled"
    cal = cfg["calibration"]
    # the tiny model's 512-token context cannot take every report: those are left out and counted
    assert cal["n_items"] + cal["n_failed"] == 70 and cal["n_items"] > 0 and len(cal["thresholds"]) == 4
    preds = [json.loads(line) for line in (run_dir / "predictions.jsonl").read_text().splitlines()]
    assert len(preds) == 3 and all(p["valid"] for p in preds)


def test_placebo_on_a_score_run_scores_the_neutral_passage_under_the_runs_calibration(tiny_model_dir, tmp_path):
    from llmscisci.tasks.placebo import NEUTRAL_PASSAGE

    res = tiny_label(tiny_model_dir, tmp_path, "--limit", "4", "--placebo", "3")
    assert res.exit_code == 0, res.output
    run_dir = next(tmp_path.glob("label_easy_score_*"))
    rows = [json.loads(line) for line in (run_dir / "placebo.jsonl").read_text().splitlines()]
    assert len(rows) == 3 and all(r["passage"] == NEUTRAL_PASSAGE and r["valid"] for r in rows)
    cb = load_codebook("easy")
    cfg = json.loads((run_dir / "config.json").read_text())
    # the neutral passage's labels are the calibrated log-odds against the run's own thresholds
    from llmscisci.tasks.score import Calibration, labels_from_odds

    odds = json.loads(rows[0]["raw"])["log_odds"]
    assert rows[0]["labels"] == labels_from_odds(odds, Calibration(**cfg["calibration"]), cb)[0]
    metrics = json.loads((run_dir / "metrics.json").read_text())
    assert metrics["placebo"]["n"] == 3
    assert metrics["placebo"]["unchanged_share"] == pytest.approx(sum(r["unchanged"] for r in rows) / 3, abs=1e-4)
