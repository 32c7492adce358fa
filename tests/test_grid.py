"""Experiment grids: expansion, dry-run estimates, resume after a crash or a SIGKILL, prompt paraphrases.

Models are fake Backend subclasses put in place of `registry.load_backend`, so no model is loaded
(except the one small test marked slow, which runs the embedded model)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from typer.testing import CliRunner

from llmscisci.backends import registry
from llmscisci.backends.base import Backend, Generation, GenParams
from llmscisci.backends.pricing import lookup
from llmscisci.cli import app
from llmscisci.data.codebook import load_codebook
from llmscisci.errors import UserError
from llmscisci.prompts import label as prompts
from llmscisci.runs import read_jsonl
from llmscisci.tasks import grid as G
from llmscisci.tasks.label import LabelSpec

REPO = Path(__file__).resolve().parents[1]
runner = CliRunner()


# ---- a fake model -----------------------------------------------------------------------------------
class FakeBackend(Backend):
    """Answers every prompt at once: label 1 (a JSON list, or the schema's object with the first field true).
    `fail_after`: raise after that many answers (over the backend's life), as a crash mid-cell would."""

    context_length = None

    def __init__(self, name: str, fail_after: int | None = None):
        self.name = name
        self.fail_after = fail_after
        self.answered = 0
        self.systems: list[str] = []

    def generate(self, conversations, params: GenParams = GenParams(), schema=None, on_result=None):
        gens = []
        for i, conv in enumerate(conversations):
            if self.fail_after is not None and self.answered >= self.fail_after:
                raise RuntimeError("simulated crash")
            self.systems.append(conv[0]["content"])
            if schema is not None:
                fields = list(schema.model_fields)
                # a label object; a judge verdict left empty (invalid, which a judge run records)
                text = "{}" if "final" in fields else json.dumps({f: j == 0 for j, f in enumerate(fields)})
            else:
                text = "[1]"
            gen = Generation(text=text, tokens_in=self.count_tokens(conv), tokens_out=3, seconds=0.001)
            self.answered += 1
            if on_result:
                on_result(i, gen)
            gens.append(gen)
        return gens

    def count_tokens(self, messages) -> int:
        return sum(len(m["content"]) for m in messages) // 4


class Loader:
    """Stands in for registry.load_backend; records every load."""

    def __init__(self, fail_after: dict[str, int] | None = None):
        self.loads: list[str] = []
        self.backends: dict[str, FakeBackend] = {}
        self.fail_after = fail_after or {}

    def __call__(self, name, options=None):
        self.loads.append(name)
        b = FakeBackend(name, self.fail_after.get(name))
        self.backends[name] = b
        return b

    def calls(self) -> int:
        return sum(b.answered for b in self.backends.values())


def write_toml(path: Path, text: str) -> Path:
    path.write_text(textwrap.dedent(text), encoding="utf-8")
    return path


def spec_of(**kw) -> G.GridSpec:
    return G.parse_grid({"tasks": ["easy"], "models": ["smollm2-135m"], **kw})


# ---- expansion ----------------------------------------------------------------------------------------
def test_expand_counts_and_ids():
    spec = spec_of(tasks=["easy", "difficult", "judge"],
                   models=["smollm2-135m", "openai:gpt-4o-mini", "baseline:tfidf-logreg"],
                   paraphrases=2, seeds=[1, 2],
                   judge={"candidates": ["labels/annotator_a.jsonl", "grid:openai:gpt-4o-mini/guidelines"]})
    g = G.expand(spec)
    kinds = [c.kind for c in g.cells]
    # label: 2 tasks x 2 LLMs x 3 variants x 3 wordings (0, 1, 2) x 2 seeds
    assert kinds.count("label") == 2 * 2 * 3 * 3 * 2
    assert kinds.count("baseline") == 2 * 2  # no variants, no paraphrases
    # judged codebooks (default easy, difficult) x LLMs x variants x seeds
    assert kinds.count("judge") == 2 * 2 * 3 * 2
    ids = [c.id for c in g.cells]
    assert len(set(ids)) == len(ids)
    assert "label/easy/smollm2-135m/structured/p2/s2" in ids
    assert "baseline/difficult/baseline:tfidf-logreg/s1" in ids
    judge = g.cell("judge/difficult/smollm2-135m/icl/s2")
    # the grid: reference points at the label cell of the same codebook, original wording, same seed
    assert judge.deps == ["label/difficult/openai:gpt-4o-mini/guidelines/p0/s2"]
    assert all(c.paraphrase is None for c in g.cells if c.kind != "label")


def test_expand_skips_variants_a_task_lacks_and_caps_paraphrases():
    g = G.expand(spec_of(tasks=["easy", "judge"], variants=["guidelines", "cot"], paraphrases=5,
                         judge={"tasks": ["easy"]}))
    label = [c for c in g.cells if c.kind == "label"]
    # guidelines has 3 paraphrases (wordings 0..3), cot has none (wording 0 only)
    want = [("cot", 0)] + [("guidelines", k) for k in range(4)]
    assert sorted((c.variant, c.paraphrase) for c in label) == want
    assert [c.variant for c in g.cells if c.kind == "judge"] == ["guidelines"]
    assert any("no judge prompt" in n for n in g.notes)
    assert any("fewer wordings" in n for n in g.notes)


@pytest.mark.parametrize("bad, message", [
    ({"variants": ["nope"]}, "unknown variant"),
    ({"models": ["smollm2-135m", "smollm2-135m"]}, "listed twice"),
    ({"tasks": ["easy", "judge"], "judge": {"candidates": ["a.jsonl", "grid:smollm2-135m/icl"],
                                            "tasks": ["difficult"]}}, "no label cell"),
    ({"tasks": ["easy", "judge"], "judge": {"candidates": ["a.jsonl", "grid:nonsense"]}},
     "grid:MODEL/VARIANT"),
    ({"limit": 0}, "limit"),
    ({"tasks": ["easy"], "temprature": 0.5}, "temprature"),
    ({"tasks": ["no-such-codebook"]}, "unknown task"),
])
def test_bad_grids_are_one_line_errors(bad, message):
    with pytest.raises(UserError, match=message) as exc:
        G.expand(spec_of(**bad))
    assert "\n" not in str(exc.value)


def test_bad_models_are_caught_before_anything_runs(tmp_path, data_dir):
    spec = spec_of(models=["baseline:nope"], out=str(tmp_path / "g"))
    with pytest.raises(UserError, match="unknown baseline method"):
        G.prepare_grid(spec, data_dir=data_dir)
    spec = spec_of(models=["./no/such/adapter/folder"], out=str(tmp_path / "g"))
    with pytest.raises(UserError, match="does not exist"):
        G.prepare_grid(spec, data_dir=data_dir)
    assert not (tmp_path / "g").exists()


def test_example_configs_parse_and_expand(data_dir):
    study = G.load_grid(REPO / "configs" / "grid_study1.toml")
    g = G.expand(study)
    llms = [m for m in study.models if not registry.resolve_model(m.name).is_baseline]
    assert len(llms) == 13  # the seed's catalogue: 8 local, 5 API
    assert sum(registry.resolve_model(m.name).is_api for m in llms) == 5
    assert "r1-distill-llama-8b" in [m.name for m in llms]
    assert sum(c.kind == "label" for c in g.cells) == 13 * 3 * 2
    assert sum(c.kind == "judge" for c in g.cells) == 13 * 3 * 2
    G.check_models(study)  # every name resolves (catalogue names, API aliases) without loading a model
    emb = G.load_grid(REPO / "configs" / "grid_embedded.toml")
    assert [m.name for m in emb.models if not registry.resolve_model(m.name).is_baseline] == ["smollm2-135m"]
    ge = G.expand(emb)
    assert {c.kind for c in ge.cells} >= {"label", "judge"}


# ---- dry run ------------------------------------------------------------------------------------------
def test_dry_run_prints_cells_calls_tokens_and_cost(tmp_path, data_dir):
    out = tmp_path / "grid"
    cfg = write_toml(tmp_path / "g.toml", f"""
        name = "dry"
        out = "{out}"
        tasks = ["easy", "difficult"]
        variants = ["guidelines", "structured"]
        models = ["smollm2-135m", "openai:gpt-4o-mini", "baseline:majority"]
        limit = 5
    """)
    res = runner.invoke(app, ["grid", str(cfg), "--dry-run", "--data-dir", str(data_dir)])
    assert res.exit_code == 0, res.output
    assert not out.exists()  # a dry run writes nothing
    spec = G.load_grid(cfg)
    g, _ = G.prepare_grid(spec, data_dir=data_dir)
    tot = G.totals(g)
    assert tot.cells == 2 * 2 * 2 + 2 and tot.to_run == tot.cells
    assert tot.calls == 2 * 2 * 2 * 5  # baselines make no model calls
    assert tot.api_calls == 2 * 2 * 5
    price = lookup("openai", "gpt-4o-mini")
    want = (tot.api_tokens_in * price.input + tot.api_tokens_out * price.output) / 1e6
    assert tot.api_cost_usd == pytest.approx(want, rel=1e-6) and want > 0
    # output tokens are the max_new_tokens cap: 32 (guidelines) and 64 (structured) per call
    assert tot.api_tokens_out == 2 * 5 * (32 + 64)
    assert tot.per_model["smollm2-135m"]["cost_usd"] == 0
    text = " ".join(res.output.split())
    assert f"{tot.cells} cells (0 finished, 0 partial, {tot.cells} to run); {tot.calls} model calls" in text
    assert f"API models: {tot.api_calls} calls, ~{tot.api_tokens_in:,} input tokens" in text
    assert f"estimated cost ${tot.api_cost_usd:.4f}" in text
    assert "label" in res.output and "baseline" in res.output and "pending" in res.output


def test_dry_run_unknown_price_says_so(tmp_path, data_dir):
    spec = spec_of(models=["openai:some-future-model"], variants=["icl"], limit=2, out=str(tmp_path / "g"))
    g, _ = G.prepare_grid(spec, data_dir=data_dir)
    assert G.totals(g).api_cost_usd is None
    assert any("no row in the price table" in n for n in g.notes)


# ---- running and resuming ---------------------------------------------------------------------------
def grid_toml(tmp_path: Path, out: Path, **extra) -> Path:
    lines = [f'name = "t"', f'out = "{out}"', 'tasks = ["easy"]', 'variants = ["guidelines", "structured"]',
             'models = ["smollm2-135m", "openai:gpt-4o-mini"]', "limit = 5"]
    lines += [f"{k} = {json.dumps(v)}" for k, v in extra.items()]
    return write_toml(tmp_path / "g.toml", "\n".join(lines) + "\n")


def preds_of(run_dir: Path) -> list[dict]:
    return read_jsonl(run_dir / "predictions.jsonl")


def test_crash_mid_cell_then_resume(tmp_path, data_dir, monkeypatch):
    out = tmp_path / "grid"
    cfg = grid_toml(tmp_path, out)
    # first run: the API model crashes after 7 answers: its first cell (5 items) finishes, its second
    # stops after 2 of 5
    first = Loader(fail_after={"openai:gpt-4o-mini": 7})
    monkeypatch.setattr(registry, "load_backend", first)
    res = runner.invoke(app, ["grid", str(cfg), "--data-dir", str(data_dir)])
    assert res.exit_code != 0 and isinstance(res.exception, UserError)
    assert "1 of 4 cells failed" in str(res.exception)
    assert first.loads == ["smollm2-135m", "openai:gpt-4o-mini"]  # each backend loaded once
    doc = json.loads((out / "grid.json").read_text())
    status = {c["id"]: c["status"] for c in doc["cells"]}
    half_id = "label/easy/openai:gpt-4o-mini/structured/p0/s2025"
    assert status[half_id] == "failed"
    assert sum(s == "done" for s in status.values()) == 3
    assert "simulated crash" in next(c["error"] for c in doc["cells"] if c["id"] == half_id)

    # plan again: finished cells are recognised by their hash, the half cell is partial
    g, inputs = G.prepare_grid(G.load_grid(cfg), data_dir=data_dir)
    half = g.cell(half_id)
    assert half.status == "partial" and half.n_done == 2 and half.calls == 3
    assert [c.status for c in g.cells].count("done") == 3

    # second run: only the missing items are asked for; the finished model is not even loaded; the
    # started cell continues through the label kind's resume (its spec from its config.json)
    from llmscisci.tasks.kinds.label import Label

    second, resumed, resume = Loader(), [], Label.resume
    monkeypatch.setattr(registry, "load_backend", second)
    monkeypatch.setattr(Label, "resume", lambda self, run_dir, backend, **kw: resumed.append(Path(run_dir))
                        or resume(self, run_dir, backend, **kw))
    res = runner.invoke(app, ["grid", str(cfg), "--data-dir", str(data_dir)])
    assert res.exit_code == 0, res.output
    assert second.loads == ["openai:gpt-4o-mini"]
    assert second.calls() == 3 and resumed == [out / half.dir]
    doc = json.loads((out / "grid.json").read_text())
    assert all(c["status"] == "done" for c in doc["cells"])
    for c in doc["cells"]:
        run_dir = out / c["dir"]
        assert (run_dir / "metrics.json").is_file()
        dois = [p["doi"] for p in preds_of(run_dir)]
        assert len(dois) == 5 and len(set(dois)) == 5  # exactly one prediction per item
    cell = next(c for c in doc["cells"] if c["id"] == half_id)
    assert cell["previous"] == "partial" and cell["done_before"] == 2
    assert cell["headline"]["micro_f1"] is not None

    # third run: nothing to do, no model loaded
    third = Loader()
    monkeypatch.setattr(registry, "load_backend", third)
    res = runner.invoke(app, ["grid", str(cfg), "--data-dir", str(data_dir)])
    assert res.exit_code == 0, res.output
    assert third.loads == []

    # killed after the last answer but before scoring: the cell is scored again without loading a model
    half_dir = out / cell["dir"]
    (half_dir / "metrics.json").unlink()
    g, _ = G.prepare_grid(G.load_grid(cfg), data_dir=data_dir)
    assert g.cell(half_id).status == "partial" and g.cell(half_id).calls == 0
    fourth = Loader()
    monkeypatch.setattr(registry, "load_backend", fourth)
    res = runner.invoke(app, ["grid", str(cfg), "--data-dir", str(data_dir)])
    assert res.exit_code == 0, res.output
    assert fourth.loads == [] and (half_dir / "metrics.json").is_file()

    # the report reads the grid in its order
    from llmscisci.report.collect import collect

    col = collect(out)
    assert len(col.label_runs) == 4
    assert [r.rel for r in col.label_runs] == [c["dir"] for c in doc["cells"]]


KILL_SCRIPT = """
import json, os, signal, sys
from llmscisci.backends import registry
from llmscisci.backends.base import Backend, Generation

ANSWERED = [0]  # over every backend of the process


class KillingBackend(Backend):
    context_length = None
    def __init__(self, name):
        self.name = name
    def count_tokens(self, messages):
        return 10
    def generate(self, conversations, params=None, schema=None, on_result=None):
        for i, conv in enumerate(conversations):
            if ANSWERED[0] == int(sys.argv[3]):
                os.kill(os.getpid(), signal.SIGKILL)
            ANSWERED[0] += 1
            text = json.dumps({f: j == 0 for j, f in enumerate(schema.model_fields)}) if schema else "[1]"
            if on_result:
                on_result(i, Generation(text=text, tokens_in=10, tokens_out=3))

registry.load_backend = lambda name, options=None: KillingBackend(name)
from llmscisci.cli import app
app(["grid", sys.argv[1], "--data-dir", sys.argv[2]])
"""


def test_sigkill_mid_cell_then_resume(tmp_path, data_dir, monkeypatch):
    out = tmp_path / "grid"
    cfg = grid_toml(tmp_path, out)
    script = tmp_path / "kill.py"
    script.write_text(KILL_SCRIPT)
    # 5 + 5 answers for the first model's two cells, then 3 in the next cell, then SIGKILL
    proc = subprocess.run([sys.executable, str(script), str(cfg), str(data_dir), "13"], capture_output=True,
                          text=True, timeout=300, env={**os.environ, "PYTHONUNBUFFERED": "1"})
    assert proc.returncode == -signal.SIGKILL, proc.stderr[-2000:]
    doc = json.loads((out / "grid.json").read_text())
    status = {c["id"]: c["status"] for c in doc["cells"]}
    killed_id = "label/easy/openai:gpt-4o-mini/guidelines/p0/s2025"
    assert status[killed_id] == "running"  # grid.json says where it died
    assert [s for s in status.values()].count("done") == 2

    g, _ = G.prepare_grid(G.load_grid(cfg), data_dir=data_dir)
    killed = g.cell(killed_id)
    assert killed.status == "partial" and killed.n_done == 3

    loader = Loader()
    monkeypatch.setattr(registry, "load_backend", loader)
    res = runner.invoke(app, ["grid", str(cfg), "--data-dir", str(data_dir)])
    assert res.exit_code == 0, res.output
    assert loader.loads == ["openai:gpt-4o-mini"] and loader.calls() == 2 + 5
    doc = json.loads((out / "grid.json").read_text())
    assert all(c["status"] == "done" for c in doc["cells"])
    killed_dir = out / next(c["dir"] for c in doc["cells"] if c["id"] == killed_id)
    dois = [p["doi"] for p in preds_of(killed_dir)]
    assert len(dois) == 5 and len(set(dois)) == 5


def test_judge_cells_wait_for_their_grid_candidates(tmp_path, data_dir, monkeypatch):
    """A judge cell reading a label cell of a model listed later runs after it; each backend loads once."""
    out = tmp_path / "grid"
    cfg = write_toml(tmp_path / "g.toml", f"""
        out = "{out}"
        tasks = ["judge", "easy"]
        variants = ["guidelines"]
        models = ["openai:gpt-4o-mini", "smollm2-135m", "baseline:majority"]
        limit = 3
        [judge]
        tasks = ["easy"]
        candidates = ["labels/annotator_a.jsonl", "grid:smollm2-135m/guidelines"]
        orders = "all"
    """)
    g, _ = G.prepare_grid(G.load_grid(cfg), data_dir=data_dir)
    judges = [c for c in g.cells if c.kind == "judge"]
    assert [c.status for c in judges] == ["waiting", "waiting"]
    assert all(c.calls == 3 * 2 for c in judges)  # 3 items x 2! orders
    loader = Loader()
    monkeypatch.setattr(registry, "load_backend", loader)
    res = runner.invoke(app, ["grid", str(cfg), "--data-dir", str(data_dir)])
    assert res.exit_code == 0, res.output
    assert sorted(loader.loads) == ["openai:gpt-4o-mini", "smollm2-135m"]
    doc = json.loads((out / "grid.json").read_text())
    assert all(c["status"] == "done" for c in doc["cells"]), doc["cells"]
    judge_dir = out / next(c["dir"] for c in doc["cells"]
                           if c["kind"] == "judge" and c["model"] == "smollm2-135m")
    cfg_j = json.loads((judge_dir / "config.json").read_text())
    assert [c["name"] for c in cfg_j["candidates"]] == ["annotator_a", "smollm2-135m/guidelines"]
    assert len(preds_of(judge_dir)) == 3 * 2
    base = next(c for c in doc["cells"] if c["kind"] == "baseline")
    assert base["status"] == "done" and base["headline"]["micro_f1"] is not None
    # rerun: everything is found finished, judge cells included
    g2, _ = G.prepare_grid(G.load_grid(cfg), data_dir=data_dir)
    assert [c.status for c in g2.cells] == ["done"] * len(g2.cells)


def test_failed_model_load_is_recorded_and_others_run(tmp_path, data_dir, monkeypatch):
    out = tmp_path / "grid"
    cfg = grid_toml(tmp_path, out)
    good = Loader()

    def load(name, options=None):
        if name == "smollm2-135m":
            raise UserError("could not load model 'smollm2-135m'")
        return good(name, options)

    monkeypatch.setattr(registry, "load_backend", load)
    res = runner.invoke(app, ["grid", str(cfg), "--data-dir", str(data_dir)])
    assert res.exit_code != 0
    doc = json.loads((out / "grid.json").read_text())
    st = {c["model"]: c["status"] for c in doc["cells"]}
    assert st == {"smollm2-135m": "failed", "openai:gpt-4o-mini": "done"}
    assert all("could not load model" in c["error"] for c in doc["cells"] if c["status"] == "failed")
    with pytest.raises(UserError):  # --fail-fast stops at the first failure
        G.run_grid(*G.prepare_grid(G.load_grid(cfg), data_dir=data_dir), fail_fast=True, show_progress=False)


# ---- paraphrases --------------------------------------------------------------------------------------
@pytest.mark.parametrize("variant", ["icl", "guidelines", "structured"])
def test_paraphrases_reword_the_system_prompt_only(variant):
    cb = load_codebook("difficult")
    wordings = [prompts.system_prompt(cb, variant, k) for k in range(4)]
    assert len(set(wordings)) == 4
    assert wordings[0] == prompts.system_prompt(cb, variant)  # 0 is the original
    for w in wordings:
        assert "{" not in w and "}" not in w  # every placeholder filled, no answer object shown
        assert prompts.rubric(cb) in w  # the same categories and descriptions
    msgs = [prompts.build_messages("Some passage.", cb, variant, paraphrase=k) for k in range(4)]
    assert [m[0]["content"] for m in msgs] == wordings
    assert len({m[-1]["content"] for m in msgs}) == 1  # the user turn is unchanged
    hashes = {prompts.prompt_hash(cb, variant, paraphrase=k) for k in range(4)}
    assert len(hashes) == 4
    with pytest.raises(UserError, match="paraphrase 4"):
        prompts.system_prompt(cb, variant, 4)


def test_paraphrase_enters_the_run_hash_and_config(data_dir):
    from llmscisci.data.items import load_items

    cb = load_codebook("easy")
    items = load_items(cb, data_dir=data_dir)[:3]
    stub = None  # no backend: the hash never includes the backend's description
    base = LabelSpec(codebook=cb, variant="guidelines", model="m").config(stub, items, [])
    zero = LabelSpec(codebook=cb, variant="guidelines", model="m", paraphrase=0).config(stub, items, [])
    one = LabelSpec(codebook=cb, variant="guidelines", model="m", paraphrase=1).config(stub, items, [])
    assert base["hash"] == zero["hash"] and zero["paraphrase"] == 0
    assert one["hash"] != zero["hash"] and one["paraphrase"] == 1
    assert one["prompt_hash"] != zero["prompt_hash"]
    assert one["system_prompt"] == prompts.system_prompt(cb, "guidelines", 1)
    with pytest.raises(UserError):
        prompts.check_paraphrase("cot", 1)  # the chain-of-thought variant has no paraphrases


def test_paraphrase_grid_cells_send_the_paraphrased_prompts(tmp_path, data_dir, monkeypatch):
    out = tmp_path / "grid"
    cfg = write_toml(tmp_path / "g.toml", f"""
        out = "{out}"
        tasks = ["easy"]
        variants = ["icl"]
        models = ["smollm2-135m"]
        paraphrases = 2
        limit = 2
    """)
    loader = Loader()
    monkeypatch.setattr(registry, "load_backend", loader)
    res = runner.invoke(app, ["grid", str(cfg), "--data-dir", str(data_dir)])
    assert res.exit_code == 0, res.output
    cb = load_codebook("easy")
    sent = loader.backends["smollm2-135m"].systems
    assert sent == [prompts.system_prompt(cb, "icl", k) for k in range(3) for _ in range(2)]
    doc = json.loads((out / "grid.json").read_text())
    cfgs = [json.loads((out / c["dir"] / "config.json").read_text()) for c in doc["cells"]]
    assert [c["paraphrase"] for c in cfgs] == [0, 1, 2]
    assert len({c["hash"] for c in cfgs}) == 3
    from llmscisci.report.collect import collect

    assert sorted(r.paraphrase for r in collect(out).label_runs) == ["0", "1", "2"]


# ---- the real embedded model ----------------------------------------------------------------------------
@pytest.mark.slow
def test_embedded_model_grid_runs_and_skips_when_finished(tmp_path, data_dir):
    out = tmp_path / "grid"
    cfg = write_toml(tmp_path / "g.toml", f"""
        out = "{out}"
        tasks = ["easy"]
        variants = ["guidelines"]
        models = ["smollm2-135m"]
        limit = 2
        [backend]
        device = "cpu"
    """)
    res = runner.invoke(app, ["grid", str(cfg), "--data-dir", str(data_dir)])
    assert res.exit_code == 0, res.output
    doc = json.loads((out / "grid.json").read_text())
    (cell,) = doc["cells"]
    assert cell["status"] == "done" and len(preds_of(out / cell["dir"])) == 2
    g, _ = G.prepare_grid(G.load_grid(cfg), data_dir=data_dir)
    assert g.cells[0].status == "done" and g.cells[0].calls == 0
