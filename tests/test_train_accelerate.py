"""`llmscisci sft train` run unchanged under `accelerate launch` with two data-parallel CPU processes
(gloo): one writer, the schedule recorded, and an adapter that loads and labels like the one-process
run's with the same effective batch (2 processes x 2 = 1 process x 4)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

SETTINGS = ["data.tasks=[\"easy\"]", "data.limit=16", "train.max_steps=3", "lora.r=2", "lora.alpha=4",
            "lora.dropout=0", "train.max_length=4096", "train.learning_rate=1e-2"]


@pytest.fixture(scope="module")
def long_tiny_model(tmp_path_factory) -> Path:
    """The tiny random Llama with room for the full labelling prompts (its tokenizer's pieces are short)."""
    from conftest import build_tiny_model, build_tiny_tokenizer

    folder = tmp_path_factory.mktemp("tiny-llama-long")
    tok = build_tiny_tokenizer()
    build_tiny_model(tok, max_positions=4096).save_pretrained(folder)
    tok.save_pretrained(folder)
    return folder


def sft(model: Path, data_dir: Path, out: Path, batch: int, processes: int) -> subprocess.CompletedProcess:
    args = ["sft", "train", "--data-dir", str(data_dir), "--out", str(out), "--set", f"model.name={json.dumps(str(model))}",
            "--set", f"train.batch_size={batch}"]
    for s in SETTINGS:
        args += ["--set", s]
    # `--multi_gpu` is accelerate's torchrun route; on a machine without a GPU its processes join over gloo
    # on the CPU (accelerate's own `--cpu` starts several processes only through MPI)
    launch = [sys.executable, "-m", "accelerate.commands.launch", "--multi_gpu", "--num_processes", str(processes),
              "--num_machines", "1", "--mixed_precision", "no", "--dynamo_backend", "no",
              "--main_process_port", "29517", "-m", "llmscisci"] if processes > 1 else [sys.executable, "-m", "llmscisci"]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(Path("src").resolve()),
                                                                   os.environ.get("PYTHONPATH")])),
           "CUDA_VISIBLE_DEVICES": "", "OMP_NUM_THREADS": "1"}
    res = subprocess.run(launch + args, capture_output=True, text=True, env=env, timeout=600)
    assert res.returncode == 0, res.stderr[-3000:]
    return res


def label(adapter: Path, data_dir: Path, out: Path) -> list[str]:
    from llmscisci.backends.base import BackendOptions, GenParams
    from llmscisci.backends.registry import load_backend
    from llmscisci.data import load_codebook, load_items
    from llmscisci.runs import read_jsonl
    from llmscisci.tasks.label import LabelSpec, run_label

    cb = load_codebook("easy")
    spec = LabelSpec(codebook=cb, variant="guidelines", model=str(adapter), split="test", limit=4,
                     params=GenParams(max_new_tokens=6))
    run = run_label(spec, load_items(cb, data_dir=data_dir), load_backend(str(adapter), BackendOptions(device="cpu")),
                    out, show_progress=False)
    assert "exact_format_rate" in run.metrics()
    return [p["raw"] for p in sorted(read_jsonl(run.path / "predictions.jsonl"), key=lambda p: p["doi"])]


@pytest.mark.slow
def test_two_processes_train_like_one(long_tiny_model, data_dir, tmp_path):
    from safetensors.torch import load_file

    two, one = tmp_path / "two", tmp_path / "one"
    res = sft(long_tiny_model, data_dir, two, batch=2, processes=2)
    assert res.stdout.count("adapter folder:") == 1  # the main process reports
    sft(long_tiny_model, data_dir, one, batch=4, processes=1)

    sched2 = json.loads((two / "train_config.json").read_text())["schedule"]
    sched1 = json.loads((one / "train_config.json").read_text())["schedule"]
    assert (sched2["processes"], sched2["per_device_batch_size"], sched2["effective_batch_size"]) == (2, 2, 4)
    assert (sched1["processes"], sched1["per_device_batch_size"], sched1["effective_batch_size"]) == (1, 4, 4)
    assert sched2["lr_scheduler"] == sched1["lr_scheduler"] == "linear" and sched2["optimizer_steps"] == 3

    log2 = [json.loads(line) for line in (two / "train_log.jsonl").read_text().splitlines()]
    log1 = [json.loads(line) for line in (one / "train_log.jsonl").read_text().splitlines()]
    steps2 = [r for r in log2 if "loss" in r]
    assert [r["step"] for r in steps2] == [1, 2, 3]  # one writer: each step once
    assert [r["epoch"] for r in steps2] == [0.25, 0.5, 0.75]  # 4 of the 16 rows per step: each process its shard
    assert [r["loss"] for r in steps2] == pytest.approx([r["loss"] for r in log1 if "loss" in r], rel=1e-4)

    w2, w1 = load_file(two / "adapter_model.safetensors"), load_file(one / "adapter_model.safetensors")
    assert w2.keys() == w1.keys()
    for k in w1:
        assert (w2[k] - w1[k]).abs().max() < 1e-5, k
    assert any(float(w.abs().max()) > 1e-3 for k, w in w1.items() if "lora_B" in k)  # it did train
    assert label(two, data_dir, tmp_path / "runs") == label(one, data_dir, tmp_path / "runs")


def test_only_the_main_process_writes_the_folder(tmp_path, monkeypatch):
    from llmscisci.train.layout import TrainOutput

    monkeypatch.setenv("RANK", "1")
    monkeypatch.setenv("WORLD_SIZE", "2")
    out = TrainOutput(tmp_path / "run")
    out.prepare({"train": {}}, "sft", "m")
    out.log({"step": 1, "loss": 1.0})
    assert out.plot() is None and not (tmp_path / "run").exists()
    monkeypatch.setenv("RANK", "0")
    out.prepare({"train": {}}, "sft", "m")
    out.log({"step": 1, "loss": 1.0})
    assert out.read_log() == [{"step": 1, "loss": 1.0}]
