"""The task contract: a new task kind is one module plus one registry entry, and with no other edit the
grid runs its cells, `llmscisci eval` re-scores its run folders and `llmscisci report` reads them.
The built-in kinds are reached only through the registry."""

from __future__ import annotations

import json
import re
import textwrap
from pathlib import Path

import pytest

from llmscisci.errors import UserError
from llmscisci.report import collect
from llmscisci.tasks import registry
from console import run_console

# a toy kind: a "perfect labeller" that copies each item's reference labels; it needs no model
TOY_MODULE = '''
"""A toy task kind for the tests: copies the reference labels of the first items of a codebook."""

from llmscisci.data.codebook import load_codebook
from llmscisci.runs import RunFolder, stable_hash
from llmscisci.tasks.base import TaskKind
from llmscisci.tasks.grid.cells import Cell

N_ITEMS = 4
CALLS = []  # what the contract's methods were asked to do


class Echo(TaskKind):
    name = "echo"
    grid_task = True
    needs_model = False
    label_like = True
    results_title = "echo"
    headline_columns = [("micro F1", "micro_f1")]

    def grid_cells(self, exp):
        return [Cell(self.name, "easy", m.name, "-", s) for m in exp.spec.models for s in exp.spec.seeds]

    def _items(self, ctx):
        cb = load_codebook("easy")
        return cb, [it for it in ctx.inputs.items_of(cb) if it.labels is not None][:N_ITEMS]

    def plan(self, ctx, cell):
        cb, items = self._items(ctx)
        cell.hash = stable_hash({"kind": self.name, "seed": cell.seed, "items": [it.doi for it in items]})
        cell.n_items = len(items)
        run_dir = ctx.index.get(cell.hash)
        ctx.state(cell, run_dir, len(items) if run_dir and (run_dir / "metrics.json").is_file() else 0)
        cell.calls = 0
        CALLS.append(("plan", cell.id))

    def run(self, ctx, cell, backend, show_progress=True):
        from llmscisci.tasks.label import finish_run

        cb, items = self._items(ctx)
        config = {"kind": self.name, "hash": cell.hash, "task": cb.task, "model": cell.model, "variant": "-",
                  "codebook": cb.model_dump(), "items": [it.doi for it in items]}
        run = RunFolder.create(ctx.out / f"echo_{cell.hash[:8]}", config)
        run.append([{"doi": it.doi, "task": it.task, "split": it.split, "labels": list(it.labels),
                     "reference": list(it.labels), "valid": True, "repaired": False} for it in items])
        finish_run(run, cb)
        CALLS.append(("run", cell.id))
        return run

    def headline(self, metrics):
        return {"micro_f1": (metrics.get("all") or {}).get("micro_f1")}

    def reevaluate(self, run_dir, reparse=False, skip_bad=False):
        from llmscisci.tasks.label import reevaluate

        CALLS.append(("reevaluate", str(run_dir)))
        return reevaluate(run_dir, reparse=reparse, skip_bad=skip_bad)
'''


@pytest.fixture
def toy_kind(tmp_path, monkeypatch):
    """Register the toy kind the way a user would (one module, one registry line); undone afterwards."""
    mod_dir = tmp_path / "toy"
    mod_dir.mkdir()
    (mod_dir / "toykind.py").write_text(TOY_MODULE, encoding="utf-8")
    monkeypatch.syspath_prepend(str(mod_dir))
    monkeypatch.setattr(registry, "_loaded", dict(registry._loaded))
    monkeypatch.setattr(collect, "LABEL_KINDS", set(collect.LABEL_KINDS))
    monkeypatch.setitem(registry.KINDS, "echo", "toykind:Echo")
    import toykind

    toykind.CALLS.clear()
    return toykind


def test_builtin_kinds_are_registered_and_follow_the_contract():
    names = [k.name for k in registry.kinds()]
    assert names == ["label", "baseline", "judge", "extract"]
    assert registry.of_run({"kind": "judge"}).name == "judge"
    assert registry.of_run({}).name == "label"  # old folders without a kind are labelling runs
    assert registry.is_grid_task("extract") and not registry.is_grid_task("easy")
    with pytest.raises(UserError, match="unknown task kind 'nope'"):
        registry.get("nope")


def test_a_toy_kind_runs_in_the_grid_eval_and_report(tmp_path, data_dir, toy_kind, capsys, monkeypatch):
    out = tmp_path / "grid"
    cfg = tmp_path / "g.toml"
    cfg.write_text(textwrap.dedent(f"""
        name = "toy"
        out = "{out}"
        tasks = ["echo"]
        models = ["smollm2-135m"]
        variants = ["guidelines"]
    """), encoding="utf-8")

    code, stdout, err = run_console(["grid", cfg, "--data-dir", data_dir], capsys, monkeypatch)
    assert code == 0, err
    grid = json.loads((out / "grid.json").read_text("utf-8"))
    (cell,) = grid["cells"]
    assert cell["kind"] == "echo" and cell["status"] == "done"
    assert cell["headline"]["micro_f1"] == pytest.approx(1.0)  # a perfect labeller
    assert ("run", cell["id"]) in toy_kind.CALLS
    assert "grid toy: echo" in stdout  # the results table the kind describes

    run_dir = out / cell["dir"]
    code, stdout, err = run_console(["eval", run_dir, "--json"], capsys, monkeypatch)
    assert code == 0, err
    assert ("reevaluate", str(run_dir)) in toy_kind.CALLS
    assert json.loads(stdout)["all"]["micro_f1"] == pytest.approx(1.0)

    code, stdout, err = run_console(["report", out, "--out", tmp_path / "rep", "--n-boot", "1000"], capsys,
                                    monkeypatch)
    assert code == 0, err
    assert "1 labelling run(s)" in err  # read by its declared kind, as the kind says

    # planned again, the finished cell is found by its hash and not run twice
    toy_kind.CALLS.clear()
    code, stdout, err = run_console(["grid", cfg, "--data-dir", data_dir], capsys, monkeypatch)
    assert code == 0, err
    assert [c for c in toy_kind.CALLS if c[0] == "run"] == []


def test_a_kind_declared_as_other_is_reported_flat(tmp_path, toy_kind, monkeypatch):
    from llmscisci.runs import RunFolder

    monkeypatch.setattr(toy_kind.Echo, "label_like", False)
    registry.get("echo")
    run = RunFolder.create(tmp_path / "r", {"kind": "echo", "hash": "h"})
    run.append([{"doi": "d", "task": "easy", "labels": [1, 0], "reference": [1, 0]}])
    run.write_metrics({"score": 1.0})
    col = collect.collect(tmp_path)
    assert [r.name for r in col.other_runs] == ["r"] and col.label_runs == []


SRC = Path(__file__).resolve().parents[1] / "src" / "llmscisci"
# the registry's own table, and the model-name reader's kinds (api | local | baseline)
NAMING = {SRC / "tasks" / "registry.py", SRC / "backends" / "registry.py"}


def kind_switches(root: Path = SRC) -> list[str]:
    """Lines that compare a task kind's name (or a model kind) with a literal, outside the registries."""
    lit = "['\"](?:" + "|".join(map(re.escape, registry.KINDS)) + ")['\"]"
    pat = re.compile(rf"kind\b[^\n]*?(?:==|!=|\bin\b)\s*[\(\[{{]?\s*{lit}|{lit}\s*(?:==|!=)[^\n]*kind\b"
                     rf"|startswith\(\(?\s*['\"]baseline")
    return [f"{p.relative_to(root)}:{i}: {line.strip()}" for p in sorted(root.rglob("*.py")) if p not in NAMING
            for i, line in enumerate(p.read_text("utf-8").splitlines(), 1) if pat.search(line)]


def test_no_code_switches_on_a_kind_name(tmp_path):
    """Code asks the task kind (its attributes and methods, through the registry) and reads model names
    with backends.registry.resolve_model; a comparison with a kind's name must not come back."""
    assert kind_switches() == []
    bad = tmp_path / "bad.py"  # the check finds what it is for
    bad.write_text('if cfg.get("kind", "label") != "label":\n    pass\nok = model_kind(m) == "baseline"\n'
                   'b = name.startswith("baseline:")\nx = col == "label"\n', encoding="utf-8")
    assert [ln.split(":")[1] for ln in kind_switches(tmp_path)] == ["1", "3", "4"]


def test_what_code_asks_a_kind_instead():
    label, baseline = registry.get("label"), registry.get("baseline")
    assert baseline.model_of({"kind": "baseline", "method": "tfidf"}) == "baseline:tfidf"
    assert label.model_of({"model": "openai:x"}) == "openai:x"
    rec = {"doi": "d", "task": "easy", "labels": [1], "order": ["a", "b"]}
    from llmscisci.records import record_type

    assert record_type("label").read(rec).key == ("d", "easy")
    assert record_type("judge").read(rec).key == ("d", "easy", ("a", "b"))
    assert registry.holds_llm_labels({"codebook": {}}) and registry.holds_llm_labels({"kind": "label", "codebook": {}})
    assert not registry.holds_llm_labels({"kind": "baseline", "codebook": {}})  # no language model
    assert not registry.holds_llm_labels({"kind": "label"}) and not registry.holds_llm_labels({"kind": "nope"})
    assert registry.declares({"kind": "judge"}, "judge") and registry.declares({}, "label")
    assert not registry.declares({"kind": "nope"}, "label")
    registry.kinds()
    assert collect.KIND_NOTES["baseline"] == baseline.report_note and "label" not in collect.KIND_NOTES


def test_a_kind_registers_with_the_decorator(monkeypatch):
    from llmscisci.tasks.base import TaskKind

    monkeypatch.setattr(registry, "KINDS", dict(registry.KINDS))
    monkeypatch.setattr(registry, "_loaded", dict(registry._loaded))
    monkeypatch.setattr(collect, "LABEL_KINDS", set(collect.LABEL_KINDS))
    monkeypatch.setattr(collect, "KIND_NOTES", dict(collect.KIND_NOTES))

    @registry.register("noted")
    class Noted(TaskKind):
        name = "noted"
        report_note = "Noted runs are made up."

    assert registry.get("noted").__class__ is Noted and registry.KINDS["noted"].endswith(":" + Noted.__qualname__)
    assert collect.KIND_NOTES["noted"] == "Noted runs are made up."
