"""`--dry-run` of label, extract and judge: item/call counts, the first prompt in full, tokens in, the
output cap, a cost (API models) or an ETA from a timing probe (local models); nothing sent or written."""

from __future__ import annotations

import shutil
from pathlib import Path

from console import run_console

FIX = Path(__file__).parent / "fixtures" / "corpus"


def test_label_dry_run_local_model_gives_an_eta(tiny_model_dir, tmp_path, capsys, monkeypatch):
    code, out, err = run_console(["label", "--input", FIX / "openalex_works.jsonl", "--task", FIX / "open_science.toml",
                                  "--model", tiny_model_dir, "--variant", "guidelines", "--limit", "20",
                                  "--max-new-tokens", "4", "--device", "cpu", "--dry-run", "--out", tmp_path / "runs"],
                                 capsys, monkeypatch)
    assert code == 0, err
    assert "items: 20" in out and "estimated time:" in out and "timing probe" in out
    assert "(model tokenizer)" in out and "output cap: 4 tokens" in out
    assert not (tmp_path / "runs").exists()


def test_label_dry_run_json(tmp_path, capsys, monkeypatch, data_dir):
    import json

    code, out, err = run_console(["label", "--task", "easy", "--data-dir", data_dir, "--model", "openai:gpt-4o-mini",
                                  "--dry-run", "--json", "--out", tmp_path / "runs"], capsys, monkeypatch)
    assert code == 0, err
    res = json.loads(out)
    assert res["dry_run"]["n_items"] == 70 and res["dry_run"]["cost_usd_max"] > 0
    assert res["dry_run"]["first_messages"][0]["role"] == "system" and "--- system ---" in err


def test_extract_dry_run_over_a_folder_of_pages(data_dir, tmp_path, capsys, monkeypatch):
    pages = tmp_path / "pages"
    pages.mkdir()
    for p in (data_dir / "rescience").glob("*.html"):
        shutil.copy(p, pages / p.name)
    code, out, err = run_console(["extract", pages, "--variant", "structured", "--model", "openai:gpt-4o-mini",
                                  "--data-dir", data_dir, "--dry-run", "--out", tmp_path / "runs"], capsys, monkeypatch)
    assert code == 0, err
    assert "units (2 page(s)):" in out and "estimated cost: at most $" in out and "--- user ---" in out
    assert not (tmp_path / "runs").exists()
    one = run_console(["extract", next(pages.iterdir()), "--variant", "structured", "--model", "openai:gpt-4o-mini",
                       "--data-dir", data_dir, "--dry-run"], capsys, monkeypatch)[1]
    n_all = int(out.split("units (2 page(s)): ")[1].split()[0].replace(",", ""))
    n_one = int(one.split("units (1 page(s)): ")[1].split()[0].replace(",", ""))
    assert 0 < n_one < n_all


def test_judge_dry_run(data_dir, tmp_path, capsys, monkeypatch):
    code, out, err = run_console(["judge", "--model", "openai:gpt-4o-mini", "--data-dir", data_dir, "--limit", "5",
                                  "--llm", data_dir / "labels" / "annotator_b.jsonl", "--dry-run",
                                  "--out", tmp_path / "runs"], capsys, monkeypatch)
    assert code == 0, err
    assert "calls (items x orders): 10" in out and "output cap:" in out and "estimated cost" in out
    assert not (tmp_path / "runs").exists()
