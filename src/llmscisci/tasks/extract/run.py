"""The extraction task: page -> blocks -> units -> backend -> parsed records -> scores -> a run folder.

predictions.jsonl holds one line per unit (its input, the raw answer, the parsed records and the
baseline's records for the same input). RunFolder keys items by `doi`; an extraction item is a unit, so
`doi` holds the unit id (``block-0003``); the unit's true DOIs are in `truth_dois`. Predictions are
appended unit by unit, so a killed run resumes where it stopped (same configuration, same --out).
metrics.json has the model's scores, the deterministic baseline's scores on the same units, and the gap.
predictions.csv has one row per predicted record (plus one per missed truth record); baseline.csv the same
for the baseline.
"""

from __future__ import annotations

import logging
import os
import time
from dataclasses import dataclass, field
from pathlib import Path

from llmscisci.backends.base import Backend, GenParams, Generation
from llmscisci import runs
from llmscisci.errors import UserError
from llmscisci.prompts import extract as prompts
from llmscisci.records import CallTotals, ExtractUnit
from llmscisci.runs import RunFolder, stable_hash
from llmscisci.tasks.extract.baseline import baseline_extract
from llmscisci.tasks.extract.html import Block, Unit, make_units, split_blocks
from llmscisci.tasks.extract.parse import parse_output
from llmscisci.tasks.extract.schema import Publication, decoding_schema
from llmscisci.tasks.extract.score import UnitResult, gap, headline, score_run
from llmscisci.tasks.extract.source import Page
from llmscisci.tasks.extract.truth import TruthIndex, load_truth
from llmscisci.tasks.generate import generate_into

log = logging.getLogger(__name__)

BASELINE = "baseline"
TOKENS_PER_RECORD = 400
PAGE_MAX_NEW_TOKENS = 2048
DEFAULT_CONTEXT = 32768  # for backends that do not state a context length (API models)


def default_max_new_tokens(unit: str, window: int) -> int:
    """Room for the answer: ~400 tokens per record a unit may hold (a record's JSON is ~150-250)."""
    if unit == "window":
        return TOKENS_PER_RECORD * max(1, window)
    if unit == "page":
        return PAGE_MAX_NEW_TOKENS
    return TOKENS_PER_RECORD


@dataclass
class ExtractSpec:
    """Everything that defines an extraction run (and so its hash), except where its output goes."""

    variant: str
    model: str
    unit: str = "block"
    window: int = 3
    limit: int | None = None
    params: GenParams = field(default_factory=GenParams)
    bins: int = 5

    @classmethod
    def from_config(cls, cfg: dict) -> ExtractSpec:
        """The spec a run's config.json records: its core, so its hash, is the stored one (resume). The
        baseline records no variant nor parameters (they do not define its run)."""
        unit, window = cfg.get("unit", "block"), cfg.get("window") or 3
        params = (GenParams(**cfg["params"]) if cfg.get("params") else
                  GenParams(max_new_tokens=default_max_new_tokens(unit, window), seed=cfg.get("seed", 2025)))
        return cls(variant=cfg.get("variant") or "structured", model=cfg["model"], unit=unit, window=window,
                   limit=cfg.get("limit"), params=params, bins=cfg.get("bins", 5))

    @property
    def is_baseline(self) -> bool:
        return self.model == BASELINE

    def core(self, page: Page, units: list[Unit]) -> dict:
        """What defines the experiment: its stable hash names the run (and finds it again to resume)."""
        return {
            "kind": "extract",
            "task": "extract",
            "source_sha256": page.sha256,
            "variant": None if self.is_baseline else self.variant,
            "model": self.model,
            "unit": self.unit,
            "window": self.window if self.unit == "window" else None,
            "limit": self.limit,
            "params": None if self.is_baseline else self.params.as_dict(),
            "prompt_hash": None if self.is_baseline else prompts.prompt_hash(self.variant),
            "units": [u.id for u in units],
        }

    def hash(self, page: Page, units: list[Unit]) -> str:
        return stable_hash(self.core(page, units))

    def config(self, page: Page, truth: TruthIndex, units: list[Unit], n_blocks: int,
               backend: Backend | None) -> dict:
        """The record written to config.json: the core, its hash, and what describes the run."""
        core = self.core(page, units)
        return {
            **core,
            "hash": stable_hash(core),
            "source": page.origin,
            "n_blocks": n_blocks,
            "bib": truth.source,
            "bins": self.bins,
            "seed": self.params.seed,
            "backend": backend.describe() if backend is not None else {"name": BASELINE},
            "structured": (not self.is_baseline) and prompts.is_structured(self.variant),
            "system_prompt": None if self.is_baseline else prompts.system_prompt(self.variant),
        }


def slug(model: str) -> str:
    """A model name for a folder name: a local model folder by its own name, others as given."""
    p = Path(model).expanduser()
    text = p.name if (os.sep in model and p.exists()) else model
    return runs.slug(text)


# ---- units --------------------------------------------------------------------------------------------
def page_fits(backend: Backend, variant: str, max_new_tokens: int):
    """fits(text): whether the unit's prompt plus the answer fits the backend's context."""
    ctx = backend.context_length or DEFAULT_CONTEXT

    def fits(text: str) -> bool:
        return backend.count_tokens(prompts.build_messages(text, variant)) + max_new_tokens <= ctx

    return fits, ctx


def plan_units(spec: ExtractSpec, page: Page, backend: Backend | None,
               blocks: list[Block] | None = None) -> tuple[list[Unit], int]:
    """(units of the run, number of blocks). Validates the page (UserError on an empty or record-less
    page) before anything is written. Page pieces are cut to the model's context; the baseline alone
    reads the whole page as one piece."""
    if blocks is None:
        blocks = split_blocks(page.text, page.origin)
    fits = max_chars = None
    if spec.unit == "page" and backend is not None:
        fits, ctx = page_fits(backend, spec.variant, spec.params.max_new_tokens)
        sample = page.text[:20000]
        chars_per_token = len(sample) / max(1, backend.count_tokens([{"role": "user", "content": sample}]))
        max_chars = max(1000, int(ctx * chars_per_token * 1.3))  # upper bound for the bisection
    units = make_units(blocks, page.text, spec.unit, spec.window, spec.limit, fits=fits, max_chars=max_chars)
    return units, len(blocks)


# ---- predictions --------------------------------------------------------------------------------------
def _dump(records: list[Publication]) -> list[dict]:
    return [r.model_dump() for r in records]


def prediction_record(unit: Unit, gen: Generation | None, truth: TruthIndex, phash: str | None,
                      records: list[Publication] | None = None) -> dict:
    """One unit's line in predictions.jsonl. `gen` None: the baseline's own run (records given)."""
    if gen is None:
        valid, repaired, perr, raw = True, False, None, ""
        recs = records or []
    elif gen.error is not None:
        valid, repaired, perr, raw, recs = False, False, None, gen.text, []
    else:
        parsed = parse_output(gen.text)
        valid, repaired, perr, raw, recs = parsed.valid, parsed.repaired, parsed.error, gen.text, parsed.records
    return {
        "doi": unit.id,
        "task": "extract",
        "unit": unit.id,
        "kind": unit.kind,
        "blocks": unit.blocks,
        "truth_dois": truth.dois_in(unit.text),
        "prompt_hash": phash,
        "input": unit.text,
        "raw": raw,
        "valid": valid,
        "repaired": repaired,
        "parse_error": perr,
        "records": _dump(recs) if valid else None,
        "baseline_records": _dump(baseline_extract(unit.text)),
        "truncated": bool(gen and (gen.extra or {}).get("finish_reason") == "length"),
        **(gen or Generation()).call_fields(),
    }


# ---- the run ------------------------------------------------------------------------------------------
def run_extract(
    spec: ExtractSpec,
    page: Page,
    truth: TruthIndex,
    backend: Backend | None,
    out: str | Path,
    run_dir: str | Path | None = None,
    show_progress: bool = True,
    blocks: list[Block] | None = None,
) -> RunFolder:
    """Extract records from `page` with `backend` (None: the baseline alone), write or resume the run
    folder, score it, return it. `blocks`: the page already split (else it is split here)."""
    if not spec.is_baseline:
        prompts.check_variant(spec.variant)
        if backend is None:
            raise UserError(f"model {spec.model!r} needs a backend")
    units, n_blocks = plan_units(spec, page, backend, blocks)
    if not units:
        raise UserError(f"{page.origin}: no units to extract from")
    n_truth = len({d for u in units for d in truth.dois_in(u.text)})
    if n_truth == 0:
        log.warning("none of the DOIs in %s occurs in %s: records cannot be scored", page.origin, truth.source)
    config = spec.config(page, truth, units, n_blocks, backend)
    phash = config["prompt_hash"]
    name = f"extract_{page.name}_{'baseline' if spec.is_baseline else spec.variant}_{slug(spec.model)}_{config['hash'][:8]}"
    path = Path(run_dir) if run_dir else Path(out) / name
    with RunFolder(path).writing():  # one writer per run folder
        run = RunFolder.create(path, config, resume=True)
        run.repair_tail()
        done = run.done_keys()
        pending = [u for u in units if (u.id, "extract") not in done]

        t0 = time.perf_counter()
        if spec.is_baseline:
            run.append(prediction_record(u, None, truth, None, baseline_extract(u.text)) for u in pending)
        elif pending:
            _generate(spec, pending, backend, run, truth, phash, show_progress)
        finish_run(run, truth, wall_seconds=time.perf_counter() - t0, n_resumed=len(units) - len(pending))
    return run


def _generate(spec: ExtractSpec, pending: list[Unit], backend: Backend, run: RunFolder, truth: TruthIndex,
              phash: str, show_progress: bool) -> None:
    schema = None
    if prompts.is_structured(spec.variant):
        schema = decoding_schema(max(u.expected_records for u in pending))
    generate_into(run, backend, [(u, prompts.build_messages(u.text, spec.variant)) for u in pending], spec.params,
                  lambda u, gen: prediction_record(u, gen, truth, phash), f"extract {spec.unit}/{spec.variant}",
                  schema=schema, show_progress=show_progress,
                  tally=lambda rec: {"records": len(rec["records"] or []), "invalid": 0 if rec["valid"] else 1})


def _records(raw: list[dict] | None) -> list[Publication] | None:
    return None if raw is None else [Publication.model_validate(r) for r in raw]


def finish_run(run: RunFolder, truth: TruthIndex, wall_seconds: float | None = None, n_resumed: int = 0) -> dict:
    """Score the predictions (model and baseline on the same units); write metrics.json and the CSVs."""
    cfg = run.config
    order = {u: i for i, u in enumerate(cfg.get("units", []))}
    preds: list[ExtractUnit] = sorted(run.records(), key=lambda p: order.get(p.unit, len(order)))
    model_units = [UnitResult(p.unit, p.input, _records(p.records) if p.valid else None,
                              repaired=bool(p.repaired), error=p.error) for p in preds]
    base_units = [UnitResult(p.unit, p.input, _records(p.baseline_records or [])) for p in preds]
    bins = int(cfg.get("bins") or 5)
    model = score_run(model_units, truth, n_bins=bins)
    base = score_run(base_units, truth, n_bins=bins)
    totals = CallTotals.from_records(preds).as_metrics()
    metrics = {
        "model_name": cfg.get("model"),
        "variant": cfg.get("variant"),
        "unit": cfg.get("unit"),
        "units_planned": len(order),
        "units_done": len(preds),
        "headline": {"model": headline(model.metrics), "baseline": headline(base.metrics)},
        "gap": gap(model.metrics, base.metrics),
        "model": model.metrics,
        "baseline": base.metrics,
        "failed": totals["failed"],
        "unanswered": totals["unanswered"],
        "last_error": totals["last_error"],
        "truncated": sum(1 for p in preds if p.truncated),
        **{k: totals[k] for k in ("refusals", "tokens", "generation_seconds", "cost_usd")},
    }
    if wall_seconds is not None:
        metrics["timing"] = {"last_wall_seconds": round(wall_seconds, 3), "resumed_units": n_resumed}
    if "model_versions" in totals:
        metrics["model_versions"] = totals["model_versions"]
    run.write_metrics(metrics)
    run.write_csv(model.rows)
    run.write_csv(base.rows, name="baseline.csv")
    return metrics


def reevaluate(run_dir: str | Path, bib: str | Path | None = None, reparse: bool = False) -> dict:
    """Recompute an extraction run's metrics from its folder, against the bib recorded in config.json
    (or `bib`). `reparse`: read the raw answers again with the current parser first."""
    run = RunFolder(run_dir)
    cfg = run.config
    from llmscisci.tasks import registry

    if not registry.declares(cfg, "extract"):
        raise UserError(f"{run_dir} is not an extraction run")
    if reparse and cfg.get("model") != BASELINE:
        preds = run.records()
        for p in preds:
            if p.error:
                continue
            parsed = parse_output(p.raw)
            p.valid, p.repaired, p.parse_error = parsed.valid, parsed.repaired, parsed.error
            p.records = _dump(parsed.records) if parsed.valid else None
        run.rewrite_predictions(preds)
    return finish_run(run, load_truth(bib or cfg["bib"]))
