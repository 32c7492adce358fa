"""The commands that became thin layers over the Python API give what the API gives: `code import`,
`code plan`, `data build`, `dpo eval` (with a codebook file of one's own), and `sft|dpo|grpo train`
resolve the same training configuration from the same options."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from console import run_console
from test_coding import annotator, fill, make_run, read_sheet, write_sheet

import llmscisci as ls
from llmscisci.errors import UserError

FIXTURES = Path(__file__).parent / "fixtures"


@pytest.fixture
def coded(tmp_path, data_dir, capsys, monkeypatch):
    """A label run of annotator a, and a sheet of 40 of its items coded as annotator b did."""
    run = make_run(tmp_path / "run_a", data_dir, annotator(data_dir, "a"), "annotator_a")
    sheet = tmp_path / "sample.csv"
    code, _, err = run_console(["code", "export", run, "--n", 40, "--out", sheet], capsys, monkeypatch)
    assert code == 0, err
    write_sheet(sheet, fill(read_sheet(sheet), annotator(data_dir, "b"), "ben"))
    return run, sheet


def test_code_import_and_plan_from_python_equal_the_commands(coded, tmp_path, data_dir, capsys, monkeypatch):
    run, sheet = coded
    code, out, err = run_console(["code", "import", sheet, "--data-dir", data_dir, "--out", tmp_path / "cli.jsonl"],
                                 capsys, monkeypatch)
    assert code == 0, err
    df = ls.code_import(sheet, data_dir=data_dir, out=tmp_path / "api.jsonl")
    assert df[["coder", "items", "tasks", "repaired"]].to_dict("records") == [
        {"coder": "ben", "items": 40, "tasks": "easy", "repaired": 0}]
    assert (tmp_path / "api.jsonl").read_text("utf-8") == (tmp_path / "cli.jsonl").read_text("utf-8")
    with pytest.raises(UserError, match="exists"):  # nothing overwritten without force
        ls.code_import(sheet, data_dir=data_dir, out=tmp_path / "api.jsonl")

    pilot = tmp_path / "cli.jsonl"
    code, out, err = run_console(["code", "plan", run, "--pilot", pilot, "--halfwidth", "0.2", "--json"],
                                 capsys, monkeypatch)
    assert code == 0, err
    plan = ls.code_plan(run, pilot, halfwidth=0.2)
    assert plan == json.loads(out) and plan["pilot_n"] == 40 and plan["total"] >= 2
    assert ls.code_plan(run, pilot, halfwidth=0.2, design="random") != plan
    with pytest.raises(UserError, match="--design 'cluster'"):
        ls.code_plan(run, pilot, design="cluster")


def test_build_data_from_python_equals_the_command(tmp_path, capsys, monkeypatch):
    sources = FIXTURES / "data" / "mlrc_sources"
    code, _, err = run_console(["data", "build", "--mlrc", sources, "--out", tmp_path / "cli", "--years", "2020,2021"],
                               capsys, monkeypatch)
    assert code == 0, err
    result = ls.build_data(tmp_path / "api", mlrc=sources, years=[2020, 2021])
    assert len(result.rows) == 5
    for name in ("mlrc_reports.csv", "mlrc_metadata.csv", "ingestion_log.jsonl"):
        assert (tmp_path / "api" / name).read_bytes() == (tmp_path / "cli" / name).read_bytes()
    with pytest.raises(UserError, match="not empty"):
        ls.build_data(tmp_path / "api", mlrc=sources)
    with pytest.raises(UserError, match="--years takes comma-separated years"):
        ls.build_data(tmp_path / "x", mlrc=sources, years="20x")
    assert not (tmp_path / "x").exists()


@pytest.mark.parametrize(("argv", "call"), [
    (["sft", "train", "--set", "train.max_steps=3", "--set", "lora.r=2"],
     lambda out: ls.sft_train(settings={"train.max_steps": 3, "lora.r": 2}, out=out)),
    (["dpo", "train", "--preferences", "prefs", "--report-to", "none", "--set", "train.max_steps=3"],
     lambda out: ls.dpo_train("prefs", settings={"train.max_steps": 3}, report_to="none", out=out)),
    (["grpo", "train", "--rewards", "format:1,label:1", "--set", "train.max_steps=3"],
     lambda out: ls.grpo_train(settings=["train.max_steps=3"], rewards="format:1,label:1", out=out)),
])
def test_train_commands_resolve_the_api_configuration(argv, call, tmp_path, capsys, monkeypatch):
    import llmscisci.train.dpo
    import llmscisci.train.grpo
    import llmscisci.train.sft

    seen = []

    class Stop(Exception):
        pass

    def trainer(cfg):
        seen.append(cfg)
        raise Stop

    for mod, name in ((llmscisci.train.sft, "train_sft"), (llmscisci.train.dpo, "train_dpo"),
                      (llmscisci.train.grpo, "train_grpo")):
        monkeypatch.setattr(mod, name, trainer)
    with pytest.raises(Stop):
        run_console([*argv, "--out", tmp_path / "out"], capsys, monkeypatch)
    with pytest.raises(Stop):
        call(tmp_path / "out")
    assert len(seen) == 2 and seen[0] == seen[1] and seen[0]["train"]["max_steps"] == 3


def _own_book(path: Path) -> Path:
    """The built-in `easy` codebook under another task name, as a codebook file of one's own."""
    from llmscisci.data.codebook import load_codebook

    cb = load_codebook("easy")
    lines = [f"task = {json.dumps('mine')}", f"title = {json.dumps(cb.title)}",
             f"question = {json.dumps(cb.question)}", f"text_column = {json.dumps(cb.text_column)}",
             f"none = {json.dumps(cb.none)}"]
    for c in cb.categories:
        lines += ["", "[[categories]]", f"short = {json.dumps(c.short)}", f"name = {json.dumps(c.name)}",
                  f"description = {json.dumps(c.description)}"]
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(lines) + "\n", "utf-8")
    return path


def test_dpo_eval_command_and_api_agree_on_an_own_codebook(tiny_model_dir, data_dir, tmp_path, capsys, monkeypatch):
    from llmscisci.train.layout import MARKER

    policy = tmp_path / "policy"
    shutil.copytree(tiny_model_dir, policy)
    (policy / MARKER).write_text(json.dumps({"base_model": str(tiny_model_dir)}), "utf-8")
    book = _own_book(tmp_path / "books" / "mine.toml")
    code, _, err = run_console(["dpo", "eval", policy, "--task", book, "--data-dir", data_dir,
                                "--out", tmp_path / "cli"], capsys, monkeypatch)
    assert code == 0, err
    result = ls.dpo_eval(policy, task=str(book), data_dir=data_dir, out=tmp_path / "api")
    cli = json.loads((tmp_path / "cli" / "comparison.json").read_text("utf-8"))
    assert list(result["tasks"]) == list(cli["tasks"]) == ["mine"]  # the codebook's task, however the file is named
    assert result["tasks"]["mine"]["metrics"] == cli["tasks"]["mine"]["metrics"]
    assert (tmp_path / "api" / "items_mine.jsonl").read_text() == (tmp_path / "cli" / "items_mine.jsonl").read_text()


def test_grid_from_python_equals_the_command(tmp_path, data_dir, capsys, monkeypatch):
    from test_grid import Loader, grid_toml

    from llmscisci.backends import registry

    monkeypatch.setattr(registry, "load_backend", Loader())
    cfg = grid_toml(tmp_path, tmp_path / "cli")
    code, out, err = run_console(["grid", cfg, "--data-dir", data_dir], capsys, monkeypatch)
    assert code == 0, err
    plan = ls.grid(cfg, data_dir=data_dir, out=tmp_path / "api", dry_run=True)
    assert len(plan) == 4 and set(plan["status"]) == {"pending"} and not (tmp_path / "api").exists()
    cells = ls.grid(cfg, data_dir=data_dir, out=tmp_path / "api", progress=False)
    keys = ["id", "status", "hash", "dir", "items"]
    cli = json.loads((tmp_path / "cli" / "grid.json").read_text("utf-8"))["cells"]
    assert cells[keys].to_dict("records") == [{k: c[k] for k in keys} for c in cli]
    assert set(cells["status"]) == {"done"} and cells.attrs["path"] == str(tmp_path / "api")
    with pytest.raises(UserError, match="--limit must be at least 1"):
        ls.grid(cfg, limit=0)


def test_grpo_build_and_export_from_python_equal_the_commands(tmp_path, data_dir, capsys, monkeypatch):
    code, _, err = run_console(["grpo", "build", "--task", "easy", "--data-dir", data_dir, "--tokenizer", "whitespace",
                                "--out", tmp_path / "cli"], capsys, monkeypatch)
    assert code == 0, err
    card = ls.grpo_build(task="easy", data_dir=data_dir, tokenizer="whitespace", out=tmp_path / "api")
    assert card["rows"] == json.loads((tmp_path / "cli" / "card.json").read_text("utf-8"))["rows"]
    for name in ("train.parquet", "test.parquet"):
        assert (tmp_path / "api" / name).read_bytes() == (tmp_path / "cli" / name).read_bytes()
    with pytest.raises(UserError, match="unknown --per-item 'some'"):
        ls.grpo_build(task="easy", per_item="some", out=tmp_path / "x")

    run = make_run(tmp_path / "run", data_dir, annotator(data_dir, "a"))
    code, _, err = run_console(["export", run, "--format", "csv", "--out", tmp_path / "cli.csv"], capsys, monkeypatch)
    assert code == 0, err
    assert ls.export(run, tmp_path / "api.csv", format="csv") == 70
    assert (tmp_path / "api.csv").read_bytes() == (tmp_path / "cli.csv").read_bytes()
    with pytest.raises(UserError, match="not a run folder"):
        ls.export(tmp_path, tmp_path / "x.csv", format="csv")
