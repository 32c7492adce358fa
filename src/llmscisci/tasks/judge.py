"""LLM-as-a-judge: a judge model scores K candidate LLMs' label vectors against the ground truth.

For each item the judge sees the passage, the correct classification (category names) and each
candidate's output, anonymised as "LLM 1..K"; it scores each candidate as the number of categories
(out of n) that match the truth and gives the best final classification. Each item is judged in
several candidate orders (all K! permutations, cyclic rotations, or a seeded sample), so the run
measures position bias as well as accuracy. One prediction per (item, order); the audit
(`metrics.judge_audit`) compares the judge's scores with the exact ones (n - Hamming distance).

Candidates are label files of any supported format (`data.labelfiles.load_labels`): annotator
files, the study's files, or `llmscisci label` run folders. The three annotator files agree on 130
of the 140 items, so judging only them gives the judge almost nothing to tell apart: mix in real
model outputs (label runs).
"""

from __future__ import annotations

import itertools
import math
import random
import time
from dataclasses import dataclass, field
from pathlib import Path

from llmscisci.backends.base import Backend, Generation, GenParams
from llmscisci.data.codebook import Codebook
from llmscisci.data.items import Item, text_sha, texts_fingerprint
from llmscisci.data.labelfiles import LabelRecord, LabelSet
from llmscisci.data.split import SPLIT_INFO
from llmscisci.errors import UserError
from llmscisci.metrics.agreement import agreement_report
from llmscisci.metrics.judge_audit import JudgedOrder, audit, exact_score
from llmscisci.prompts import judge as prompts
from llmscisci.records import CallTotals, JudgeCall
from llmscisci.runs import RunFolder, slug, stable_hash
from llmscisci.tasks.texts import TEXTS_KEY, reconcile
from llmscisci.tasks.generate import generate_into
from llmscisci.tasks.judge_parse import parse_judge

DEFAULT_MAX_NEW_TOKENS = {"icl": 160, "guidelines": 96, "structured": 96}


def default_max_new_tokens(variant: str, k: int, n: int) -> int:
    """Enough room for the variant's answer with k candidates and n categories (a structured answer
    cut short cannot parse: about 6 tokens per score and 8 per category, plus slack)."""
    need = 32 + 6 * k + 8 * n
    if variant == "icl":
        need *= 2  # free prose before the scores
    return max(DEFAULT_MAX_NEW_TOKENS.get(variant, 128), need)
MAX_ALL_ORDERS = 720  # K! above this needs a sampled number of orders


@dataclass(frozen=True)
class Candidate:
    """One candidate LLM: a name (anonymised in the prompt) and its records of one task by DOI."""

    name: str
    path: str
    records: dict[str, LabelRecord]


def candidates_from_sets(sets: list[LabelSet], task: str) -> list[Candidate]:
    """Candidates of one task from loaded label files; duplicate names get a numeric suffix."""
    out, seen = [], {}
    for s in sets:
        name = s.name
        seen[name] = seen.get(name, 0) + 1
        if seen[name] > 1:
            name = f"{name}-{seen[name]}"
        out.append(Candidate(name, s.path, s.for_task(task)))
    return out


def make_orders(k: int, spec: str | int, seed: int) -> list[tuple[int, ...]]:
    """Candidate orders (tuples of candidate indices, position 1 first).

    `all`: every permutation (K!); `cyclic`: the K rotations (each candidate at each position once);
    an integer N: N distinct permutations drawn with `seed` (all of them when N >= K!)."""
    if k < 1:
        raise UserError("no candidates to order")
    spec_s = str(spec).strip().lower()
    if spec_s == "all":
        if math.factorial(k) > MAX_ALL_ORDERS:
            raise UserError(f"--orders all: {k}! orders is too many; give a number or 'cyclic'")
        return list(itertools.permutations(range(k)))
    if spec_s == "cyclic":
        return [tuple((i + s) % k for i in range(k)) for s in range(k)]
    try:
        n = int(spec_s)
    except ValueError:
        raise UserError(f"--orders {spec!r}: use all, cyclic or a number of orders") from None
    if n < 1:
        raise UserError("--orders must be at least 1")
    total = math.factorial(k)
    if n >= total and total <= MAX_ALL_ORDERS:
        return list(itertools.permutations(range(k)))
    rng = random.Random(seed)
    if total <= MAX_ALL_ORDERS:
        return rng.sample(list(itertools.permutations(range(k))), n)
    found: list[tuple[int, ...]] = []
    while len(found) < n:
        perm = list(range(k))
        rng.shuffle(perm)
        if tuple(perm) not in found:
            found.append(tuple(perm))
    return found


def select_items(items: list[Item], candidates: list[Candidate], split: str = "all",
                 limit: int | None = None) -> tuple[list[Item], dict]:
    """Items with a ground truth that every candidate has a record for (a record may lack labels:
    an invalid answer, shown to the judge as such). Returns the items and why others were left out."""
    if split not in ("all", "train", "test"):
        raise UserError(f"unknown split {split!r}: use all, train or test")
    skipped = {"no_truth": 0, "missing_in": {c.name: 0 for c in candidates}}
    sel = []
    for it in items:
        if split != "all" and it.split != split:
            continue
        if it.labels is None:
            skipped["no_truth"] += 1
            continue
        missing = [c.name for c in candidates if it.doi not in c.records]
        for name in missing:
            skipped["missing_in"][name] += 1
        if not missing:
            sel.append(it)
    if limit is not None:
        if limit < 1:
            raise UserError("--limit must be at least 1")
        sel = sel[:limit]
    return sel, skipped


@dataclass
class JudgeSpec:
    """Everything that defines a judge run (and so its hash), except where its output goes."""

    codebook: Codebook
    variant: str
    model: str
    params: GenParams = field(default_factory=GenParams)
    orders: str = "all"
    limit: int | None = None
    split: str = "all"
    data_source: str = ""

    @classmethod
    def from_config(cls, cfg: dict) -> JudgeSpec:
        """The spec a run's config.json records: its core, so its hash, is the stored one (resume)."""
        return cls(codebook=Codebook(**cfg["codebook"]), variant=cfg["variant"], model=cfg["model"],
                   params=GenParams(**cfg["params"]), orders=cfg.get("orders_spec", "all"), limit=cfg.get("limit"),
                   split=cfg.get("split_filter", "all"), data_source=cfg.get("data_source", ""))

    def core(self, items: list[Item], candidates: list[Candidate], orders: list[tuple[int, ...]]) -> dict:
        """What defines the experiment: its stable hash names the run (and finds it again to resume)."""
        k = len(candidates)
        return {
            "kind": "judge",
            "task": self.codebook.task,
            "variant": self.variant,
            "model": self.model,
            "params": self.params.as_dict(),
            "orders_spec": str(self.orders),
            "orders": [[candidates[i].name for i in o] for o in orders],
            "candidates": [{"name": c.name, "path": c.path} for c in candidates],
            "limit": self.limit,
            "split_filter": self.split,
            "prompt_hash": prompts.prompt_hash(self.codebook, self.variant, k),
            "codebook": self.codebook.model_dump(),
            "items": [it.doi for it in items],
            TEXTS_KEY: texts_fingerprint(it.text for it in items),  # changed texts, another run (tasks/texts.py)
        }

    def hash(self, items: list[Item], candidates: list[Candidate], orders: list[tuple[int, ...]]) -> str:
        return stable_hash(self.core(items, candidates, orders))

    def config(self, backend: Backend | None, items: list[Item], candidates: list[Candidate],
               orders: list[tuple[int, ...]], skipped: dict) -> dict:
        """The record written to config.json: the core, its hash, and what describes the run."""
        k = len(candidates)
        core = self.core(items, candidates, orders)
        return {
            **core,
            "hash": stable_hash(core),
            "split": SPLIT_INFO,
            "seed": self.params.seed,
            "data_source": self.data_source,
            "backend": backend.describe() if backend is not None else {},
            "structured": prompts.is_structured(self.variant),
            "score_scale": f"number of the {self.codebook.n} categories on which a candidate agrees with the truth",
            "skipped_items": skipped,
            "system_prompt": prompts.system_prompt(self.codebook, self.variant, k),
            # the complete answers the prompt shows, as a label run records them: none, the judge prompts
            # state the answer format in words (tests/test_judge.py parses every rendered prompt for one)
            "prompt_examples": [],
        }


def call_record(item: Item, order_id: int, names: list[str], labels: list, gen: Generation,
                codebook: Codebook, phash: str) -> dict:
    """The prediction of one judge call (one item in one candidate order)."""
    truth = list(item.labels)
    parsed = parse_judge(gen.text, len(names), codebook, labels, truth) if gen.error is None else None
    scores = parsed.scores if parsed else [None] * len(names)
    final = list(parsed.final) if parsed and parsed.final is not None else None
    return JudgeCall(**{
        "doi": item.doi,
        "task": item.task,
        "split": item.split,
        "text_sha": text_sha(item.text),
        "order_id": order_id,
        "order": names,
        "prompt_hash": phash,
        "raw": gen.text,
        "valid": bool(parsed and parsed.valid),
        "scores_valid": bool(parsed and parsed.scores_valid),
        "final_valid": bool(parsed and parsed.final_valid),
        "problems": parsed.problems if parsed else [gen.error],
        "judge_scores": dict(zip(names, scores)),
        "exact_scores": {nm: exact_score(lab, truth) for nm, lab in zip(names, labels)},
        "final_labels": final,
        "final_repaired": bool(parsed and parsed.final_repaired),
        "final_source": parsed.final_source if parsed else None,
        "truth": truth,
        "llm_labels": {nm: (list(lab) if lab is not None else None) for nm, lab in zip(names, labels)},
        **gen.call_fields(),
    }).to_json()


def call_key(rec: JudgeCall | dict) -> tuple:
    """(doi, task, order): one call per item and candidate order."""
    return (rec if isinstance(rec, JudgeCall) else JudgeCall.read(rec)).key


def predictions(run: RunFolder) -> list[JudgeCall]:
    """A judge run's calls, one per (item, order) (the last wins if a call was written twice);
    unreadable lines are skipped (`run.bad_lines` counts them)."""
    return run.records(skip_bad=True)


def prepare(spec: JudgeSpec, items: list[Item], candidates: list[Candidate]) -> tuple[list[Item], list, dict]:
    """Validate the inputs (before anything is written): the items to judge, the orders, skip counts."""
    prompts.check_variant(spec.variant)
    if len(candidates) < 2:
        raise UserError(
            "the judge needs at least two candidate LLMs (--llm FILE_OR_RUNDIR, repeatable); the annotator "
            "files agree on 130 of 140 items, so mix in label runs of real models"
        )
    selected, skipped = select_items(items, candidates, spec.split, spec.limit)
    if not selected:
        missing = ", ".join(f"{n} lacks {c}" for n, c in skipped["missing_in"].items() if c)
        raise UserError(f"no item has a ground truth and a record in every candidate file"
                        f"{': ' + missing if missing else ''} (check --task, --split and the label files)")
    orders = make_orders(len(candidates), spec.orders, spec.params.seed)
    return selected, orders, skipped


def run_judge(
    spec: JudgeSpec,
    items: list[Item],
    candidates: list[Candidate],
    backend: Backend,
    out: str | Path,
    run_dir: str | Path | None = None,
    show_progress: bool = True,
) -> RunFolder:
    """Judge `items` in every order; write (or resume) the run folder with predictions and the audit."""
    selected, orders, skipped = prepare(spec, items, candidates)
    config = spec.config(backend, selected, candidates, orders, skipped)
    phash = config["prompt_hash"]

    path = Path(run_dir) if run_dir else (
        Path(out) / f"judge_{spec.codebook.task}_{spec.variant}_{slug(spec.model)}_{config['hash'][:8]}")
    config = reconcile(path, spec.core(selected, candidates, orders), config,
                       lambda: ((it.doi, text_sha(it.text)) for it in selected))
    with RunFolder(path).writing():  # one writer per run folder
        run = RunFolder.create(path, config, resume=True)
        run.repair_tail()
        done = {r.key for r in predictions(run) if not r.call_failed}  # no answer: ask again
        schema = prompts.judge_schema(spec.codebook, len(candidates)) if prompts.is_structured(spec.variant) else None

        entries = []
        for it in selected:
            for oid, order in enumerate(orders):
                names = [candidates[i].name for i in order]
                if (it.doi, it.task, tuple(names)) in done:
                    continue
                recs = [candidates[i].records[it.doi] for i in order]
                shown = [prompts.Shown(r.labels, r.response) for r in recs]
                entries.append(((it, oid, names, [r.labels for r in recs]),
                                prompts.build_messages(it.text, it.labels, shown, spec.codebook, spec.variant)))
        t0 = time.perf_counter()
        generate_into(run, backend, entries, spec.params,
                      lambda entry, gen: call_record(*entry, gen, spec.codebook, phash),
                      f"judge {spec.codebook.task}/{spec.variant}", schema=schema, show_progress=show_progress)
        finish_judge(run, spec.codebook, wall_seconds=time.perf_counter() - t0, n_resumed=len(done))
    return run


def cases(preds: list[dict]) -> list[JudgedOrder]:
    """The audit's view of a run's calls (failed calls have no scores and are skipped)."""
    return [
        JudgedOrder(f"{p.doi}|{p.task}", tuple(p.order), p.judge_scores, p.exact_scores)
        for p in preds if not p.error
    ]


def _rate(xs: list[bool]) -> float | None:
    return sum(xs) / len(xs) if xs else None


def final_quality(preds: list[JudgeCall]) -> dict:
    """The judge's final classification against the truth and against the truly best candidate."""
    got = [p for p in preds if p.final_labels is not None]
    best = []
    for p in got:
        top = max(p.exact_scores.values())
        best.append(any(p.llm_labels[nm] == p.final_labels for nm, s in p.exact_scores.items() if s == top))
    return {
        "n": len(got),
        "matches_truth": _rate([p.final_labels == p.truth for p in got]),
        "matches_a_best_llm": _rate(best),
        "repaired_rate": _rate([bool(p.final_repaired) for p in got]),
        "sources": {s: sum(1 for p in got if (p.final_source or "").split(":")[0] == s)
                    for s in sorted({(p.final_source or "").split(":")[0] for p in got})},
    }


def inputs_agreement(preds: list[JudgeCall], codebook: Codebook) -> dict:
    """Agreement among the candidates (and with the truth) on the judged items."""
    names = {nm for p in preds for nm in p.llm_labels}
    truth_name = "truth" if "truth" not in names else "(truth)"
    coders: dict[str, dict] = {truth_name: {}}
    for p in preds:
        key = f"{p.doi}|{p.task}"
        coders[truth_name][key] = tuple(p.truth)
        for nm, lab in p.llm_labels.items():
            coders.setdefault(nm, {})
            if lab is not None:
                coders[nm][key] = tuple(lab)
    return agreement_report(coders, codebook.shorts).to_dict()


def judge_metrics(preds: list[JudgeCall], codebook: Codebook) -> dict:
    ok = [p for p in preds if not p.error]
    totals = CallTotals.from_records(preds).as_metrics()
    metrics = {
        "kind": "judge",
        "calls": len(preds),
        "items": len({(p.doi, p.task) for p in preds}),
        "orders": len({tuple(p.order) for p in preds}),
        "failed": totals["failed"],
        "unanswered": totals["unanswered"],
        "last_error": totals["last_error"],
        "valid_rate": _rate([bool(p.valid) for p in preds]),
        "scores_parsed_rate": _rate([bool(p.scores_valid) for p in preds]),
        "final_parsed_rate": _rate([bool(p.final_valid) for p in preds]),
        "audit": audit(cases(preds)),
        "audit_test": audit(cases([p for p in preds if p.split == "test"])),
        "final": final_quality(ok),
        "inputs_agreement": inputs_agreement(preds, codebook),
    }
    metrics |= {k: totals[k] for k in ("refusals", "tokens", "cost_usd", "generation_seconds")}
    return metrics


def finish_judge(run: RunFolder, codebook: Codebook, wall_seconds: float | None = None, n_resumed: int = 0) -> dict:
    """Compute the audit from the predictions; write metrics.json and predictions.csv."""
    preds = predictions(run)
    metrics = judge_metrics(preds, codebook)
    if wall_seconds is not None:
        prev = run.metrics().get("timing", {})
        metrics["timing"] = {"last_wall_seconds": round(wall_seconds, 3), "resumed_calls": n_resumed,
                             "previous": prev or None}
    run.write_metrics(metrics)
    rows = []
    for p in preds:
        row = {k: getattr(p, k) for k in ("doi", "task", "split", "order_id", "valid", "error")}
        row["order"] = " > ".join(p.order)
        for nm in sorted(p.exact_scores):
            row[f"judge_{nm}"] = p.judge_scores.get(nm)
            row[f"exact_{nm}"] = p.exact_scores[nm]
        row |= codebook.columns("final", p.final_labels) | codebook.columns("truth", p.truth)
        row["tokens_in"], row["tokens_out"], row["seconds"] = p.tokens_in, p.tokens_out, p.seconds
        rows.append(row)
    run.write_csv(rows)
    return metrics


def reevaluate_judge(run_dir: str | Path, reparse: bool = False) -> dict:
    """Recompute a judge run's audit from its predictions (optionally re-parsing the raw answers)."""
    run = RunFolder(run_dir)
    cfg = run.config
    from llmscisci.tasks import registry

    if not registry.declares(cfg, "judge"):
        raise UserError(f"{run_dir}: not a judge run (config kind {cfg.get('kind')!r})")
    codebook = Codebook(**cfg["codebook"])
    if reparse:
        preds = predictions(run)
        for p in preds:
            if p.error:
                continue
            names = p.order
            labels = [p.llm_labels[nm] for nm in names]
            parsed = parse_judge(p.raw or "", len(names), codebook, labels, p.truth)
            p.judge_scores = dict(zip(names, parsed.scores))
            p.final_labels = list(parsed.final) if parsed.final is not None else None
            p.valid, p.scores_valid, p.final_valid = parsed.valid, parsed.scores_valid, parsed.final_valid
            p.final_repaired, p.final_source, p.problems = parsed.final_repaired, parsed.final_source, parsed.problems
        run.rewrite_predictions(preds)
    return finish_judge(run, codebook)
