"""`llmscisci data build|fetch|import-seed|validate` through the real entry point; the comparison script."""

from __future__ import annotations

import functools
import hashlib
import http.server
import io
import json
import shutil
import subprocess
import sys
import tarfile
import threading
import zipfile
from pathlib import Path

import pandas as pd
import pytest

from console import run_console as run
from llmscisci.data.labelfiles import load_labels
from llmscisci.data.reports import load_reports
from llmscisci.errors import UserError

FIXTURE_DATA = Path(__file__).resolve().parent / "fixtures" / "data"  # sources and seed formats

REPO = Path(__file__).resolve().parents[1]
FIXTURES = Path(__file__).parent / "fixtures" / "latex" / "mlrc"




# ---------------------------------------------------------------- build


def test_build_real_sources(data_dir, tmp_path, capsys, monkeypatch):
    out = tmp_path / "data"
    code, stdout, _ = run(
        ["data", "build", "--mlrc", FIXTURE_DATA / "mlrc_sources", "--out", out], capsys, monkeypatch
    )
    assert code == 0
    assert "rows written: 5" in stdout and "merged: 5" in stdout
    assert len(load_reports(out)) == 5
    assert {p.name for p in out.iterdir()} == {
        "mlrc_reports.csv",
        "mlrc_metadata.csv",
        "ingestion_log.jsonl",
        "ingestion_summary.txt",
        "ingestion_info.json",
    }
    info = json.loads((out / "ingestion_info.json").read_text())
    assert info["merged_policy"] == "easy" and info["rows"] == 5
    meta = pd.read_csv(out / "mlrc_metadata.csv", dtype=str)
    assert (
        meta.loc[meta.doi == "10.5281/zenodo.4833219", "code_url"].item()
        == "https://github.com/tzole1155/EndToEndObjectPose"
    )
    # the output is itself a valid data folder (empty difficult texts of merged parts are warnings)
    code, stdout, stderr = run(["data", "validate", out], capsys, monkeypatch)
    assert code == 0 and "0 error(s), 3 warning(s)" in stdout and stderr.count("empty text") == 3
    # existing output is not overwritten without --overwrite; bad input is a one-line error
    code, _, stderr = run(
        ["data", "build", "--mlrc", FIXTURE_DATA / "mlrc_sources", "--out", out], capsys, monkeypatch
    )
    assert code == 2 and stderr.startswith("error:") and "--overwrite" in stderr
    code, _, stderr = run(
        ["data", "build", "--mlrc", FIXTURE_DATA / "mlrc_sources", "--years", "2019", "--out", tmp_path / "x"],
        capsys,
        monkeypatch,
    )
    assert code == 2 and "no edition folder" in stderr and not (tmp_path / "x").exists()
    code, _, stderr = run(
        ["data", "build", "--mlrc", FIXTURE_DATA / "mlrc_sources", "--merged", "guess", "--out", tmp_path / "y"],
        capsys,
        monkeypatch,
    )
    assert code == 2 and "--merged" in stderr


def test_build_years_option(tmp_path, capsys, monkeypatch):
    out = tmp_path / "d"
    code, stdout, _ = run(
        ["data", "build", "--mlrc", FIXTURES, "--years", "2021,2022", "--out", out], capsys, monkeypatch
    )
    assert code == 0
    df = load_reports(out)
    assert sorted(df["mlrc_year"]) == ["2021", "2021", "2022"]
    log = [json.loads(x) for x in (out / "ingestion_log.jsonl").read_text().splitlines()]
    assert {r["folder"].split("/")[0] for r in log} == {"2021", "2022"}


# ---------------------------------------------------------------- validate


def test_validate_shared_data_passes(data_dir, capsys, monkeypatch):
    code, stdout, stderr = run(["data", "validate", data_dir], capsys, monkeypatch)
    assert code == 0
    assert "0 error(s), 2 warning(s)" in stdout
    lines = [x for x in stderr.splitlines() if x.strip()]
    assert len(lines) == 2 and all(
        "mlrc_reports.csv" in x and "column 'difficult': empty text" in x for x in lines
    )
    assert "reference.csv (140)" in stdout and "annotator_a.jsonl (140)" in stdout


def test_validate_defaults_to_the_bundled_dataset(capsys, monkeypatch):
    monkeypatch.delenv("LLMSCISCI_DATA", raising=False)
    code, stdout, _ = run(["data", "validate"], capsys, monkeypatch)
    assert code == 0 and "checked bundled: 70 reports" in stdout and "0 error(s)" in stdout


def _broken_copy(data_dir: Path, dest: Path) -> Path:
    shutil.copy(data_dir / "mlrc_reports.csv", dest / "mlrc_reports.csv")
    shutil.copytree(data_dir / "labels", dest / "labels")
    df = pd.read_csv(dest / "mlrc_reports.csv", dtype=str, keep_default_na=False)
    df.loc[2, "doi"] = ""  # row 3: empty DOI
    df.loc[5, "doi"] = df.loc[4, "doi"]  # row 6: duplicate of row 5
    df.loc[7, "mlrc_year"] = "twenty"  # row 8: not a year
    df.to_csv(dest / "mlrc_reports.csv", index=False)
    ref = pd.read_csv(dest / "labels" / "reference.csv", dtype=str, keep_default_na=False)
    ref.loc[0, "labels"] = "[1, 0, 1]"  # row 1: wrong length
    ref.loc[1, "labels"] = "[1, 0, 2, 0, 0]"  # row 2: not 0/1
    ref.loc[2, "task"] = "hard"  # row 3: unknown task
    ref.to_csv(dest / "labels" / "reference.csv", index=False)
    lines = (dest / "labels" / "annotator_b.jsonl").read_text().splitlines()
    rec = json.loads(lines[3])
    rec["doi"] = "10.5281/zenodo.0000000"  # row 4: unknown DOI
    lines[3] = json.dumps(rec)
    lines[6] = "{not json"  # row 7
    rec = json.loads(lines[9])
    rec["labels"] = [1, 0, 0, 0, 1]  # row 10: none with others -> repaired (warning)
    lines[9] = json.dumps(rec)
    (dest / "labels" / "annotator_b.jsonl").write_text("\n".join(lines) + "\n")
    (dest / "labels" / "notes.csv").write_text("a,b\n1,2\n")  # not a label file
    return dest


def test_validate_broken_copy_prints_every_problem(data_dir, tmp_path, capsys, monkeypatch):
    d = _broken_copy(data_dir, tmp_path)
    code, stdout, stderr = run(["data", "validate", d], capsys, monkeypatch)
    assert code == 1
    reports, ref, ann = (
        str(d / "mlrc_reports.csv"),
        str(d / "labels" / "reference.csv"),
        str(d / "labels" / "annotator_b.jsonl"),
    )
    expected = [
        f"error: {reports}, row 3, column 'doi': empty DOI",
        f"error: {reports}, row 6, column 'doi': duplicate DOI",
        f"error: {reports}, row 8, column 'mlrc_year': not a year",
        f"error: {ref}, row 1, column 'labels': bad label vector for task 'easy': expected 5 entries, got 3",
        f"error: {ref}, row 2, column 'labels': bad label vector",
        f"error: {ref}, row 3, column 'task': unknown task 'hard'",
        f"error: {ann}, row 4, column 'doi': unknown DOI 10.5281/zenodo.0000000",
        f"error: {ann}, row 7: not a JSON line",
        f"warning: {ann}, row 10, column 'labels': label vector [1, 0, 0, 0, 1] breaks the exclusive-none",
        f"error: {d / 'labels' / 'notes.csv'}: unrecognised label file",
        f"warning: {reports}, row 21, column 'difficult': empty text",
    ]
    for e in expected:
        assert e in stderr, f"missing: {e}\n{stderr}"
    n_err = stderr.count("error: ")
    assert n_err >= 10 and f"{n_err} error(s)" in stdout


def test_validate_not_a_data_folder(tmp_path, capsys, monkeypatch):
    code, _, stderr = run(["data", "validate", tmp_path], capsys, monkeypatch)
    assert code == 2 and "not a data directory" in stderr


# ---------------------------------------------------------------- import-seed


def test_import_seed(data_dir, tmp_path, capsys, monkeypatch):
    seed = sorted((FIXTURE_DATA / "seed_formats").glob("*.csv"))
    out = tmp_path / "seed"
    code, stdout, _ = run(["data", "import-seed", *seed, "--out", out], capsys, monkeypatch)
    assert code == 0
    assert (
        "numbering 'study': easy: 1 code" in stdout
        and "difficult: 1 documentation, 2 algorithm, 3 math, 4 nuance, 5 none" in stdout
    )
    assert "limitations_results not converted" in stdout
    reports = load_reports(out)
    assert sorted(reports["doi"]) == [f"10.5281/zenodo.900000{i}" for i in (1, 2, 3)]
    ref = load_labels(out / "labels" / "reference.csv")
    # study numbering: difficult "3, 4" = math + nuance; vectors in the lecture order
    # [algorithm, nuance, documentation, math, none]
    assert ref.labels("difficult")["10.5281/zenodo.9000001"] == (0, 1, 0, 1, 0)
    assert ref.labels("easy")["10.5281/zenodo.9000002"] == (0, 1, 0, 1, 0)
    refcsv = pd.read_csv(out / "labels" / "reference.csv", dtype=str)
    assert "nuance;math" in set(refcsv["label_names"])
    for model in ("gpt4", "gemini", "llama3"):
        ls = load_labels(out / "labels" / f"annotator_{model}.jsonl")
        assert len(ls) == 6
        # the per-LLM vectors (lecture order) agree with the study's labels on the sample rows
        assert ls.labels("difficult") == ref.labels("difficult")
        assert ls.for_task("easy")["10.5281/zenodo.9000001"].response.startswith('["1. Availability of Code"')
    report = json.loads((out / "import_report.json").read_text())
    assert report["scheme"] == "study" and report["numbering"]["difficult"]["1"] == "documentation"
    code, stdout, stderr = run(["data", "validate", out], capsys, monkeypatch)
    assert code == 0, stderr


def test_import_seed_refuses_inputs_inside_the_output_folder(data_dir, tmp_path, capsys, monkeypatch):
    out = tmp_path / "seed"
    out.mkdir()
    study = out / "ReScience_JCDL-23.csv"
    shutil.copy(FIXTURE_DATA / "seed_formats" / "ReScience_JCDL-23.sample.csv", study)
    before = sorted(p.name for p in out.iterdir())
    code, _, stderr = run(["data", "import-seed", study, "--out", out, "--overwrite"], capsys, monkeypatch)
    assert code == 2 and len(stderr.strip().splitlines()) == 1
    assert "is inside the output folder" in stderr
    assert study.is_file() and sorted(p.name for p in out.iterdir()) == before  # nothing deleted or written
    # the library refuses too, whatever calls it
    from llmscisci.data.importseed import plan_import, write_import

    with pytest.raises(UserError, match="inside the output folder"):
        write_import(plan_import([study]), out, overwrite=True)
    assert study.is_file()


def test_import_seed_lecture_scheme_maps_by_name(data_dir, tmp_path, capsys, monkeypatch):
    study = FIXTURE_DATA / "seed_formats" / "ReScience_JCDL-23.sample.csv"
    code, stdout, _ = run(
        ["data", "import-seed", study, "--out", tmp_path / "o", "--scheme", "lecture"], capsys, monkeypatch
    )
    assert code == 0 and "numbering 'lecture'" in stdout
    ref = load_labels(tmp_path / "o" / "labels" / "reference.csv")
    # lecture numbering: "3, 4" = documentation + math
    assert ref.labels("difficult")["10.5281/zenodo.9000001"] == (0, 0, 1, 1, 0)
    code, _, stderr = run(
        ["data", "import-seed", study, "--out", tmp_path / "p", "--scheme", "notebook"], capsys, monkeypatch
    )
    assert code == 2 and "--scheme" in stderr and not (tmp_path / "p").exists()


def test_import_seed_bad_input_writes_nothing(data_dir, tmp_path, capsys, monkeypatch):
    bad = tmp_path / "gpt4_effortly_labels_x.csv"
    df = pd.read_csv(FIXTURE_DATA / "seed_formats" / "gpt4_effortly_labels_beta.sample.csv", dtype=str)
    df.loc[1, "y_easy_gpt4"] = "[1, 0]"
    df.loc[2, "doi"] = "10.5281/zenodo.1234567"
    df.to_csv(bad, index=False)
    other = tmp_path / "table.csv"
    other.write_text("x,y\n1,2\n")
    study = FIXTURE_DATA / "seed_formats" / "ReScience_JCDL-23.sample.csv"
    out = tmp_path / "out"
    code, _, stderr = run(["data", "import-seed", study, bad, other, "--out", out], capsys, monkeypatch)
    assert code == 1 and not out.exists()
    assert f"{bad}, row 2, column 'y_easy_gpt4'" in stderr
    assert f"{bad}, row 3, column 'doi': unknown DOI 10.5281/zenodo.1234567" in stderr
    assert f"{other}: not the study's file" in stderr
    assert "nothing written" in stderr


# ---------------------------------------------------------------- fetch


def _archive(kind: str) -> bytes:
    buf = io.BytesIO()
    files = [p for p in sorted(FIXTURES.rglob("*")) if p.is_file()]
    if kind == "tar":
        with tarfile.open(fileobj=buf, mode="w:gz") as tf:
            for p in files:
                tf.add(p, arcname=f"MLRC-main/{p.relative_to(FIXTURES)}")
    else:
        with zipfile.ZipFile(buf, "w") as zf:
            for p in files:
                zf.write(p, f"MLRC-main/{p.relative_to(FIXTURES)}")
    return buf.getvalue()


@pytest.fixture()
def server(tmp_path):
    root = tmp_path / "www"
    root.mkdir()
    (root / "mlrc.tar.gz").write_bytes(_archive("tar"))
    (root / "mlrc.zip").write_bytes(_archive("zip"))
    (root / "evil.tar.gz").write_bytes(_evil())
    handler = functools.partial(_QuietHandler, directory=str(root))
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}", root
    httpd.shutdown()
    httpd.server_close()


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass


def _evil() -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tf:
        data = b"x"
        info = tarfile.TarInfo("../escaped.txt")
        info.size = len(data)
        tf.addfile(info, io.BytesIO(data))
    return buf.getvalue()


@pytest.mark.parametrize("name", ["mlrc.tar.gz", "mlrc.zip"])
def test_fetch_then_build(server, name, tmp_path, capsys, monkeypatch):
    url, root = server
    digest = hashlib.sha256((root / name).read_bytes()).hexdigest()
    checkout = tmp_path / "checkout"
    code, stdout, stderr = run(
        ["data", "fetch", "--url", f"{url}/{name}", "--out", checkout, "--sha256", digest],
        capsys,
        monkeypatch,
    )
    assert code == 0, stderr
    assert (checkout / "2022" / "7" / "summary.tex").is_file()  # the top-level MLRC-main/ is unwrapped
    info = json.loads((checkout / "fetch.json").read_text())
    assert info["sha256"] == digest and info["unwrapped"] == "MLRC-main"
    code, _, _ = run(["data", "build", "--mlrc", checkout, "--out", tmp_path / "data"], capsys, monkeypatch)
    assert code == 0 and len(load_reports(tmp_path / "data")) == 4
    # the default checkout location is the cache folder that fetch fills by default
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    code, _, stderr = run(["data", "fetch", "--url", f"{url}/{name}"], capsys, monkeypatch)
    assert code == 0, stderr
    code, _, stderr = run(["data", "build", "--out", tmp_path / "data2"], capsys, monkeypatch)
    assert code == 0 and len(load_reports(tmp_path / "data2")) == 4


def test_fetch_failures_leave_nothing(server, tmp_path, capsys, monkeypatch):
    url, _ = server
    out = tmp_path / "c"
    for args, msg in [
        (["--url", f"{url}/mlrc.tar.gz", "--sha256", "0" * 64], "SHA-256 mismatch"),
        (["--url", f"{url}/missing.tar.gz"], "HTTP 404"),
        (["--url", f"{url}/evil.tar.gz"], "unsafe paths"),
        (["--url", "http://127.0.0.1:9/none.tar.gz", "--timeout", "5"], "download of"),
    ]:
        code, _, stderr = run(["data", "fetch", *args, "--out", out], capsys, monkeypatch)
        assert code == 2 and msg in stderr and stderr.startswith("error:"), stderr
        assert not out.exists()
        assert not [p for p in tmp_path.iterdir() if p.name.startswith(".c.")]  # no temporary leftovers
    assert not (tmp_path / "escaped.txt").exists()


def test_build_without_checkout_says_what_to_do(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "empty-cache"))
    code, _, stderr = run(["data", "build", "--out", tmp_path / "o"], capsys, monkeypatch)
    assert code == 2 and "llmscisci data fetch" in stderr


# ---------------------------------------------------------------- comparison script


def test_compare_script(data_dir, tmp_path, capsys, monkeypatch):
    out = tmp_path / "data"
    assert (
        run(["data", "build", "--mlrc", FIXTURE_DATA / "mlrc_sources", "--out", out], capsys, monkeypatch)[0] == 0
    )
    proc = subprocess.run(
        [
            sys.executable,
            str(REPO / "scripts" / "compare_ingestion.py"),
            str(out),
            str(data_dir),
            "--json",
            str(tmp_path / "cmp.json"),
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 1, proc.stderr
    assert "all fields: 48/50 equal after normalisation" in proc.stdout
    assert "10.5281/zenodo.6574663 difficult:" in proc.stdout and "log: [merged]" in proc.stdout
    cmp = json.loads((tmp_path / "cmp.json").read_text())
    assert len(cmp["differences"]) == 2 and cmp["common"] == 5 and len(cmp["only_reference"]) == 65
    proc = subprocess.run(
        [
            sys.executable,
            str(REPO / "scripts" / "compare_ingestion.py"),
            str(out),
            str(data_dir),
            "--fields",
            "title,easy,scope",
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0 and "15/15" in proc.stdout
