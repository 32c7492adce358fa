"""scripts/setup.sh installs torch's CPU build from the PyTorch CPU index (TORCH_INDEX), and falls back to
the default index when that index cannot be reached. Run against a stand-in .venv/bin/python that logs
its calls, so nothing is installed."""

from __future__ import annotations

import os
import shutil
import stat
import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
FAKE = """#!/usr/bin/env bash
echo "$*" >> "$(dirname "$0")/calls.log"
case "$*" in
  *"import torch,transformers"*) echo "torch fake transformers fake" ;;
  *"import torch"*) exit 1 ;;
  *"--index-url"*) [ "${FAKE_INDEX_OK:-0}" = 1 ] || exit 1 ;;
esac
exit 0
"""


def setup_run(tmp_path: Path, **env) -> list[str]:
    root = tmp_path / "repo"
    (root / "scripts").mkdir(parents=True)
    shutil.copy(REPO / "scripts" / "setup.sh", root / "scripts" / "setup.sh")
    py = root / ".venv" / "bin" / "python"
    py.parent.mkdir(parents=True)
    py.write_text(FAKE)
    py.chmod(py.stat().st_mode | stat.S_IEXEC)
    base = {k: v for k, v in os.environ.items() if not k.startswith("TORCH_")}
    proc = subprocess.run(["bash", str(root / "scripts" / "setup.sh")], capture_output=True, text=True,
                          env={**base, **env}, timeout=60)
    assert proc.returncode == 0, proc.stderr
    return (py.parent / "calls.log").read_text().splitlines()


def torch_installs(calls: list[str]) -> list[str]:
    return [c for c in calls if c.startswith("-m pip install") and "torch==" in c]


@pytest.mark.skipif(shutil.which("bash") is None, reason="needs bash")
def test_cpu_index_first(tmp_path):
    calls = torch_installs(setup_run(tmp_path, FAKE_INDEX_OK="1"))
    assert len(calls) == 1
    assert "--index-url https://download.pytorch.org/whl/cpu" in calls[0] and "--timeout" in calls[0]


@pytest.mark.skipif(shutil.which("bash") is None, reason="needs bash")
def test_unreachable_index_falls_back_to_the_default(tmp_path):
    calls = torch_installs(setup_run(tmp_path, TORCH_INDEX="http://127.0.0.1:9/simple"))
    assert len(calls) == 2
    assert "--index-url http://127.0.0.1:9/simple" in calls[0]
    assert "--index-url" not in calls[1] and "torch==2.13.0" in calls[1]
