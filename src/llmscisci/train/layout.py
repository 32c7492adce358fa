"""One output-folder layout for every trainer (SFT, DPO, GRPO).

    OUT/
      adapter_config.json, adapter_model.safetensors   the LoRA adapter (PEFT)
      tokenizer files                                   the tokenizer used (with its chat template)
      train_config.json                                 the resolved configuration (+ versions, seed)
      train_log.jsonl                                   every logged metric, one JSON object per step
      curves.png                                        the logged curves
      split.json                                        the canonical split used (train/test DOIs)
      llmscisci_train.json                              marker: trainer kind and base model name

Under `accelerate launch` only the main process writes it (llmscisci.train.distributed); train_config.json
then also records the schedule (processes, effective batch size, learning-rate schedule).

A folder like this is accepted as a model name everywhere a model is (the local backend loads the
base model and applies the adapter).
"""

from __future__ import annotations

import json
import math
import statistics
from pathlib import Path

from llmscisci.runs import read_jsonl, versions, write_json
from llmscisci.train.distributed import is_main, schedule_record

MARKER = "llmscisci_train.json"
LOG = "train_log.jsonl"


class TrainOutput:
    def __init__(self, path: str | Path):
        self.path = Path(path)

    def prepare(self, config: dict, kind: str, base_model: str, split: dict | None = None) -> None:
        if not is_main():
            return
        self.path.mkdir(parents=True, exist_ok=True)
        (self.path / LOG).write_text("", encoding="utf-8")
        write_json(self.path / "train_config.json", {**config, "kind": kind, "versions": versions()})
        write_json(self.path / MARKER, {"kind": kind, "base_model": base_model})
        if split is not None:
            write_json(self.path / "split.json", split)

    def log(self, record: dict) -> None:
        if not is_main():
            return
        with (self.path / LOG).open("a", encoding="utf-8") as fh:
            fh.write(json.dumps(record, default=float) + "\n")

    def read_log(self) -> list[dict]:
        return read_jsonl(self.path / LOG)

    def cleanup(self) -> None:
        """Drop the trainer's empty scratch folder (checkpoints are not saved: the adapter is the result)."""
        import shutil

        if not is_main():
            return
        scratch = self.path / "checkpoints"
        if scratch.is_dir() and not any(scratch.rglob("*.safetensors")):
            shutil.rmtree(scratch, ignore_errors=True)

    def record_schedule(self, trainer) -> None:
        """Add the schedule the trainer used (batch sizes over all processes, learning rate) to train_config.json."""
        if not is_main():
            return
        cfg_path = self.path / "train_config.json"
        cfg = json.loads(cfg_path.read_text("utf-8"))
        write_json(cfg_path, {**cfg, "schedule": schedule_record(trainer)})

    def plot(self, keys: list[str] | None = None, title: str = "") -> Path | None:
        if not is_main():
            return None
        return plot_curves(self.read_log(), self.path / "curves.png", keys=keys, title=title)


def is_train_output(path: str | Path) -> bool:
    return (Path(path) / MARKER).is_file()


def plot_curves(log: list[dict], dest: Path, keys: list[str] | None = None, title: str = "") -> Path | None:
    """One small panel per logged numeric metric, against the step."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    skip = {"step", "epoch", "total_flos", "train_runtime", "train_samples_per_second",
            "train_steps_per_second", "grad_norm", "learning_rate", "train_loss", "train_seconds",
            "num_tokens"}  # bookkeeping: a line that only rises, or one point at the end
    series: dict[str, list[tuple[float, float]]] = {}
    for rec in log:
        step = rec.get("step")
        if step is None:
            continue
        for k, v in rec.items():
            if k in skip or (keys and k not in keys) or not isinstance(v, (int, float)) or isinstance(v, bool):
                continue
            if isinstance(v, float) and not math.isfinite(v):
                continue
            series.setdefault(k, []).append((step, v))
    if not series:
        return None
    names = sorted(series, key=lambda k: (k != "loss", k))[:12]
    cols = min(3, len(names))
    rows = math.ceil(len(names) / cols)
    fig, axes = plt.subplots(rows, cols, figsize=(4 * cols, 2.8 * rows), squeeze=False)
    for ax, name in zip(axes.flat, names):
        xs, ys = zip(*series[name])
        if len(xs) >= 20:  # noisy per-step values (small batches): faint, with a moving average on top
            w = max(5, len(xs) // 15)
            ax.plot(xs, ys, color="tab:blue", alpha=0.3, linewidth=0.8)
            smooth = [statistics.fmean(ys[max(0, i - w + 1):i + 1]) for i in range(len(ys))]
            ax.plot(xs, smooth, color="tab:blue", linewidth=1.6, label=f"mean of {w} steps")
            ax.legend(fontsize=7, loc="best")
        else:
            ax.plot(xs, ys, marker="o", markersize=3)
        ax.set_title(name, fontsize=9)
        ax.set_xlabel("step", fontsize=8)
        ax.grid(alpha=0.3)
    for ax in list(axes.flat)[len(names):]:
        ax.axis("off")
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    fig.savefig(dest, dpi=110)
    plt.close(fig)
    return dest


def make_log_callback(output: TrainOutput):
    """A transformers TrainerCallback that appends every log event to train_log.jsonl."""
    from transformers import TrainerCallback

    class JsonlLogger(TrainerCallback):
        def on_log(self, args, state, control, logs=None, **kwargs):
            if logs:
                output.log({"step": state.global_step, "epoch": state.epoch, **logs})

    return JsonlLogger()
