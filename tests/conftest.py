"""Shared fixtures. The shared data folder is read in place (never copied into the repository)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


def _shared_data() -> Path:
    env = os.environ.get("LLMSCISCI_DATA")
    return Path(env) if env else REPO.parent / "shared" / "data"


@pytest.fixture(scope="session")
def data_dir() -> Path:
    path = _shared_data()
    if not (path / "mlrc_reports.csv").is_file():
        pytest.fail(f"shared data not found at {path}; set LLMSCISCI_DATA")
    return path


@pytest.fixture(autouse=True)
def _isolated_cache(tmp_path_factory, monkeypatch):
    """Keep API caches and similar per-test state out of the user's cache, but share the converted
    embedded model (expensive to build) through LLMSCISCI_MODEL_CACHE."""
    monkeypatch.setenv("LLMSCISCI_TEST", "1")
    yield
