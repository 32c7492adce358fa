"""The bundled dataset: found through importlib.resources, equal to the project's data folder when one is
beside the repository, carried by a built wheel, and named (never by an absolute path) in bench results."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from llmscisci.paths import bundled_data_dir

REPO = Path(__file__).resolve().parents[1]
# The master copy: ../shared/data beside the repository, or the folder $LLMSCISCI_DATA names.
SHARED = Path(os.environ.get("LLMSCISCI_DATA") or REPO.parent / "shared" / "data")
EXPECTED = ["README.md", "mlrc_reports.csv", "labels/reference.csv", "labels/annotator_a.jsonl",
            "labels/annotator_b.jsonl", "labels/annotator_c.jsonl", "rescience/published.bib",
            "rescience/read_index_2022-07-11.html", "rescience/read_index_2025-03-04.html"]


def bundled_files() -> list[str]:
    root = bundled_data_dir()
    return sorted(p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file()
                  and "__pycache__" not in p.parts)


def test_bundled_dataset_is_complete():
    assert sorted(EXPECTED) == bundled_files()


def test_bundled_files_equal_the_data_folder():
    """Byte for byte, every bundled data file equals the master copy (the card README differs on purpose)."""
    if not (SHARED / "mlrc_reports.csv").is_file():
        pytest.skip(f"no data folder at {SHARED}")
    root = bundled_data_dir()
    for rel in bundled_files():
        if rel != "README.md":
            assert (root / rel).read_bytes() == (SHARED / rel).read_bytes(), rel


def test_fixture_sources_equal_the_data_folder():
    if not (SHARED / "mlrc_sources").is_dir():
        pytest.skip(f"no data folder at {SHARED}")
    fixtures = REPO / "tests" / "fixtures" / "data"
    for sub in ("mlrc_sources", "seed_formats"):
        for p in sorted((SHARED / sub).rglob("*")):
            if p.is_file():
                rel = p.relative_to(SHARED)
                assert (fixtures / rel).read_bytes() == p.read_bytes(), rel


def test_bench_results_name_no_absolute_path():
    """Results kept in the repository name data as `bundled` or relative to the data folder."""
    files = [REPO / "bench" / "results.json", *sorted((REPO / "bench" / "results").glob("*.json"))]
    bad = []

    def walk(x, where):
        if isinstance(x, dict):
            for k, v in x.items():
                walk(v, f"{where}.{k}")
        elif isinstance(x, list):
            for i, v in enumerate(x):
                walk(v, f"{where}[{i}]")
        elif isinstance(x, str) and any(t.startswith(("/home/", "/work/", "/tmp/", "/Users/", "/root/"))
                                        for t in x.split()):
            bad.append(f"{where}: {x}")

    for f in files:
        walk(json.loads(f.read_text("utf-8")), f.name)
    assert not bad, bad


def test_wheel_carries_every_bundled_file(tmp_path):
    """A wheel built from the source tree holds every bundled file (package data, not the source tree)."""
    src = tmp_path / "src"
    shutil.copytree(REPO, src, ignore=shutil.ignore_patterns(".venv", ".git", "runs", "build", "dist", "*.egg-info",
                                                             "__pycache__", ".pytest_cache", "tests", "bench",
                                                             "docs", ".hypothesis", "test-artifacts"))
    env = {**os.environ, "PIP_NO_INDEX": "1", "PIP_DISABLE_PIP_VERSION_CHECK": "1"}
    proc = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q",
                           "-w", str(tmp_path / "dist"), str(src)], capture_output=True, text=True, env=env,
                          timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    wheel = next((tmp_path / "dist").glob("llmscisci-*.whl"))
    names = set(zipfile.ZipFile(wheel).namelist())
    missing = [rel for rel in bundled_files() if f"llmscisci/data/bundled/{rel}" not in names]
    assert not missing, missing
    assert "llmscisci/data/textio.py" in names
