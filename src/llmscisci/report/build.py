"""Turn collected runs into a report document: numbers, intervals, comparisons and figures.

Metrics are recomputed from predictions.jsonl so that each point estimate sits inside its own
bootstrap interval; where metrics.json reports a different value (another scoring policy for
invalid outputs, say) the report says so next to the table.
"""

from __future__ import annotations

import datetime as _dt
import json
import math
from collections.abc import Callable
from itertools import combinations


from llmscisci.console import DASH, console, fmt, fmt_p, pct
from llmscisci import runs
from llmscisci.metrics import stats as S
from llmscisci.report import collect, plots
from llmscisci.report.collect import Collection, JsonTable, OtherRun, TrainRun
from llmscisci.report.diagnostics import macro_table, text_dependence_section
from llmscisci.report.distribution import distribution_section
from llmscisci.report.runstats import SPLITS, RunStats, _num, _pred, run_stats
from llmscisci.report.document import Figure, Report, Section, Table, Text

X_KEYS = ("step", "global_step")
SKIP_CURVE_KEYS = {"step", "global_step", "epoch", "total_flos", "train_runtime", "train_samples_per_second",
                   "train_steps_per_second", "time", "timestamp"}
MAX_CURVES = 12


# ------------------------------------------------------------------------------------------------
# the report
# ------------------------------------------------------------------------------------------------
class _Figures:
    def __init__(self):
        self.n = 0

    def make(self, slug: str, png: bytes, caption: str) -> Figure:
        self.n += 1
        return Figure(f"fig-{self.n:02d}-{runs.slug(slug, lower=True, keep=None, default='x')[:40]}", png, caption)


def build_report(
    col: Collection,
    *,
    n_boot: int = S.DEFAULT_BOOT,
    seed: int = S.DEFAULT_SEED,
    level: float = S.DEFAULT_LEVEL,
    adjust: str = "holm",
    title: str | None = None,
    progress: bool = False,
) -> Report:
    figs = _Figures()
    stats = _all_run_stats(col, n_boot=n_boot, seed=seed, level=level, progress=progress)
    grid_name = (col.grid or {}).get("name") if col.grid else None
    rep = Report(title or f"llmscisci report: {grid_name or col.root.name or col.root}")
    rep.meta = _meta(col, n_boot, seed, level)
    overview = Section("Overview")
    overview.add(Table(["", ""], [[k, v] for k, v in rep.meta]))
    if stats:
        overview.add(Text(
            f"Intervals are {int(level * 100)}% percentile bootstrap intervals from {n_boot:,} resamples of "
            f"reports (DOIs), seed {seed}: both items of a report (easy and difficult) are drawn together. "
            "Metrics are recomputed from each run's predictions; an invalid output counts as predicting no "
            "category (an exact-match miss and a false negative for every true label)."))
    for s in col.skipped:
        overview.add(Text(f"Skipped {s}.", "note"))
    for run in col.label_runs:
        if run.partial:
            overview.add(Text(f"{run.rel or run.name} is partial: {len(run.records)} of {run.planned} planned "
                              "items (an interrupted run; resume it to finish). Its numbers cover those items "
                              "only.", "warn"))
        if run.bad_lines:
            overview.add(Text(f"{run.rel or run.name}: {run.bad_lines} unreadable line(s) of predictions.jsonl "
                              "skipped (--skip-bad-lines).", "warn"))
    rep.sections.append(overview)
    reads = text_dependence_section(col.label_runs)
    if reads is not None:
        rep.sections.append(reads)

    scored = [s for s in stats if s.splits]  # runs with reference labels to score against
    if stats and len(scored) < len(stats):
        overview.add(Text(f"{len(stats) - len(scored)} of {len(stats)} labelling runs have no reference "
                          "labels: their label distribution is shown, with validity and cost.", "note"))
    if scored:
        rep.sections.append(_results(col, scored, figs, level))
        comp = _comparisons(col, scored, n_boot=n_boot, seed=seed, level=level, adjust=adjust)
        if comp is not None:
            rep.sections.append(comp)
        sens = _sensitivity(col, scored)
        if sens is not None:
            rep.sections.append(sens)
        rep.sections.append(_per_label(col, scored, figs))
        rep.sections.append(_confusion(col, scored))
    dist = distribution_section(col.label_runs, level)
    if dist is not None:
        rep.sections.append(dist)
    if stats:
        rep.sections.append(_validity(stats, figs))
    if col.agreement:
        rep.sections.append(_agreement(col.agreement))
    if col.robustness:
        from llmscisci.report.robustness import section as robustness_section

        rep.sections.append(robustness_section(col.robustness, figs.make))
    if col.train_runs:
        rep.sections.append(_training(col.train_runs, figs))
    if col.other_runs:
        rep.sections.append(_other(col.other_runs))
    return rep


def _all_run_stats(col: Collection, *, n_boot, seed, level, progress) -> list[RunStats]:
    if not col.label_runs:
        return []
    if not progress:
        return [run_stats(r, n_boot=n_boot, seed=seed, level=level) for r in col.label_runs]
    from rich.progress import track


    return [run_stats(r, n_boot=n_boot, seed=seed, level=level)
            for r in track(col.label_runs, description="bootstrap", console=console, transient=True)]


def _meta(col: Collection, n_boot: int, seed: int, level: float) -> list[tuple[str, str]]:
    runs = col.label_runs
    meta = [("Source", str(col.root)),
            ("Generated", _dt.datetime.now().astimezone().strftime("%Y-%m-%d %H:%M %Z"))]
    if runs:
        def uniq(xs) -> str:
            return ", ".join(dict.fromkeys(xs))

        meta += [("Labelling runs", str(len(runs))), ("Tasks", uniq(r.task for r in runs)),
                 ("Models", uniq(r.model for r in runs)), ("Prompt variants", uniq(r.variant for r in runs)),
                 ("Bootstrap", f"{n_boot:,} DOI resamples, seed {seed}, {int(level * 100)}% percentile")]
    if col.train_runs:
        meta.append(("Training folders", str(len(col.train_runs))))
    if col.agreement:
        meta.append(("Agreement tables", str(len(col.agreement))))
    if col.robustness:
        meta.append(("Robustness analyses", str(len(col.robustness))))
    if col.other_runs:
        meta.append(("Other runs", str(len(col.other_runs))))
    return meta


def _by_task(stats: list[RunStats]) -> dict[str, list[RunStats]]:
    out: dict[str, list[RunStats]] = {}
    for s in stats:
        out.setdefault(s.run.task, []).append(s)
    return out


def _cell_cols(stats: list[RunStats]) -> tuple[list[str], Callable[[RunStats], list[str]]]:
    para = any(s.run.paraphrase is not None for s in stats)
    dup = len({(s.run.task, *s.run.cell) for s in stats}) < len(stats)
    cols = ["Model", "Variant"] + (["Paraphrase"] if para else []) + (["Folder"] if dup else [])

    def cells(s: RunStats) -> list[str]:
        r = s.run
        return [r.model, r.variant] + ([r.paraphrase or DASH] if para else []) + ([r.rel] if dup else [])

    return cols, cells


def _baselines(stats: list[RunStats], split: str) -> list[list[str]]:
    for s in stats:
        b = s.run.metrics.get("baselines")
        if not isinstance(b, dict) or not b:
            continue
        rows = []
        for name, vals in b.items():
            if not isinstance(vals, dict):
                continue
            v = vals.get(split) if isinstance(vals.get(split), dict) else vals
            if not any(_num(v.get(m)) for m in S.HEADLINE):
                continue
            rows.append([f"baseline: {name}"] + [fmt(v.get(m)) for m in S.HEADLINE])
        return rows
    return []


def _results(col: Collection, stats: list[RunStats], figs: _Figures, level: float) -> Section:
    sec = Section("Results")
    sec.add(Text(f"Each metric as estimate [{int(level * 100)}% CI]. Hamming loss: lower is better; "
                 "the others: higher is better. DOIs: reports resampled by the bootstrap. Macro F1 scores a "
                 "label with no true and no predicted positives as 0 (scikit-learn's zero_division=0, as in "
                 "metrics.json), so it drops in a split or resample that lacks a rare label."))
    kinds = dict.fromkeys(str(s.run.config.get("kind") or "label") for s in stats)
    for note in dict.fromkeys(collect.KIND_NOTES.get(k, "") for k in kinds):
        if note:  # what each run kind shown says of its runs (declared by the task registry)
            sec.add(Text(note))
    cols, cells = _cell_cols(stats)
    heads = [S.HEADLINE[m]["title"] for m in S.HEADLINE]
    for task, group in _by_task(stats).items():
        sub = Section(f"Task: {task}", level=3)
        for split, what in SPLITS.items():
            have = [s for s in group if split in s.splits]
            if not have:
                continue
            rows = []
            for s in have:
                ss = s.splits[split]
                rows.append(cells(s) + [str(ss.n_dois), str(ss.n_items)]
                            + [ss.ci[m].fmt() for m in S.HEADLINE] + [pct(ss.invalid_rate)])
            sub.add(Table(cols + ["DOIs", "Items"] + heads + ["Invalid"], rows,
                          caption=f"{task}: {what}"))
            reasons = sorted({r for s in have for r in (s.splits[split].ci[m].degenerate for m in S.HEADLINE) if r})
            if reasons:
                sub.add(Text("* zero-width interval (" + "; ".join(reasons) + "); it does not mean the "
                             "estimate is certain.", "warn"))
            base = _baselines(have, split)
            if base:
                sub.add(Table(["Baseline"] + heads, base, caption=f"{task}: baselines on {what} "
                              "(fitted on the training split; from metrics.json, no interval)"))
            if split == "all":
                panels = {S.HEADLINE[m]["title"]: [s.splits[split].ci[m] for s in have] for m in S.HEADLINE}
                png = plots.forest([s.run.name for s in have], panels, title=f"{task}: {what}")
                sub.add(figs.make(f"results-{task}-{split}", png,
                                  f"{task}: estimates with {int(level * 100)}% bootstrap intervals ({what})"))
        for s in group:
            for m in s.mismatches:
                sub.add(Text(m + ".", "warn"))
        sec.add(sub)
    return sec


def _comparisons(col: Collection, stats: list[RunStats], *, n_boot, seed, level, adjust) -> Section | None:
    rows_meta = []
    for task, group in _by_task(stats).items():
        for a, b in combinations(group, 2):
            ra, rb = a.run, b.run
            if ra.paraphrase != rb.paraphrase:
                continue
            if (ra.model != rb.model) + (ra.variant != rb.variant) != 1:
                continue  # compare cells that differ in one factor only
            ma = {str(r.doi): r for r in ra.scored()}
            mb = {str(r.doi): r for r in rb.scored()}
            common = [d for d in ma if d in mb]
            if len(common) < 2:
                continue
            L = len(ra.shorts)
            if len(rb.shorts) != L:
                continue
            y = S.as_prediction_matrix([ma[d].reference for d in common], L)
            pa = S.as_prediction_matrix([_pred(ma[d]) for d in common], L)
            pb = S.as_prediction_matrix([_pred(mb[d]) for d in common], L)
            diffs = S.paired_bootstrap(y, pa, pb, common, n_boot=n_boot, seed=seed, level=level)
            mc = S.mcnemar_exact_match(y, pa, pb)
            rows_meta.append((task, ra, rb, len(common), diffs, mc))
    if not rows_meta:
        return None
    sec = Section("Paired comparisons")
    adj_mc = S.adjust_pvalues([m[5].p_value for m in rows_meta], adjust)
    adj_f1 = S.adjust_pvalues([m[4]["micro_f1"].p_value for m in rows_meta], adjust)
    rows = []
    for i, (task, ra, rb, n, diffs, mc) in enumerate(rows_meta):
        rows.append([
            task, f"{ra.name}", f"{rb.name}", str(n),
            diffs["subset_accuracy"].diff.fmt(), f"{mc.a_only}/{mc.b_only}",
            fmt_p(mc.p_value), fmt_p(adj_mc.p_adjusted[i]),
            diffs["micro_f1"].diff.fmt(), fmt_p(diffs["micro_f1"].p_value), fmt_p(adj_f1.p_adjusted[i]),
        ])
    name = S.METHODS.get(adjust, adjust)
    sec.add(Text("Runs of the same task that differ in one factor (model or prompt variant), scored on the "
                 "items both have. Δ = A − B with a paired DOI bootstrap interval. McNemar's test "
                 "compares exact matches (A-only / B-only: items only one run gets exactly right; exact "
                 "binomial test under 25 discordant items) and treats items as independent; the bootstrap "
                 "p-value respects DOI clusters."))
    sec.add(Table(["Task", "A", "B", "Items", "Δ subset accuracy", "A-only/B-only", "McNemar p",
                   f"p ({name})", "Δ micro F1", "bootstrap p", f"p ({name})"], rows))
    note = adj_mc.note or "One comparison: no multiple-comparison adjustment needed."
    sec.add(Text(note, "note"))
    return sec


def _sensitivity(col: Collection, stats: list[RunStats]) -> Section | None:
    groups: dict[tuple[str, str, str], list[RunStats]] = {}
    for s in stats:
        if s.run.paraphrase is not None and "all" in s.splits:
            groups.setdefault((s.run.task, s.run.model, s.run.variant), []).append(s)
    groups = {k: v for k, v in groups.items() if len(v) >= 2}
    if not groups:
        return None
    sec = Section("Prompt sensitivity")
    sec.add(Text("Each prompt variant run with K paraphrases of its instructions: the spread of each metric "
                 "across wordings (all evaluated items). A difference between variants smaller than this "
                 "spread holds for one wording only."))
    rows = []
    spreads: dict[tuple[str, str, str], dict[str, S.Spread]] = {}
    for key, group in groups.items():
        values = {s.run.paraphrase: {m: s.splits["all"].ci[m].estimate for m in S.HEADLINE} for s in group}
        sp = S.spread(values)
        spreads[key] = sp
        rows.append(list(key) + [str(len(group))]
                    + [f"{fmt(sp[m].min)}–{fmt(sp[m].max)} (sd {fmt(sp[m].std)})" for m in S.HEADLINE])
    heads = [f"{S.HEADLINE[m]['title']} min–max" for m in S.HEADLINE]
    sec.add(Table(["Task", "Model", "Variant", "K"] + heads, rows))
    # does the ordering of variants survive rewording?
    by_model: dict[tuple[str, str], list[tuple[str, S.Spread]]] = {}
    for (task, model, variant), sp in spreads.items():
        if "micro_f1" in sp:
            by_model.setdefault((task, model), []).append((variant, sp["micro_f1"]))
    for (task, model), items in by_model.items():
        for (va, a), (vb, b) in combinations(items, 2):
            if a.min <= b.max and b.min <= a.max:
                sec.add(Text(f"{task}, {model}: micro F1 of {va} ({fmt(a.min)}–{fmt(a.max)}) and {vb} "
                             f"({fmt(b.min)}–{fmt(b.max)}) overlap across paraphrases; their order "
                             "depends on the wording.", "warn"))
            else:
                better = va if a.min > b.max else vb
                sec.add(Text(f"{task}, {model}: {better} beats the other variant ({va} vs {vb}) under every "
                             "paraphrase.", "note"))
    return sec


def _per_label(col: Collection, stats: list[RunStats], figs: _Figures) -> Section:
    sec = Section("Per-label F1")
    for task, group in _by_task(stats).items():
        have = [s for s in group if "all" in s.splits]
        if not have:
            continue
        shorts = have[0].run.shorts
        sub = Section(f"Task: {task}", level=3)
        panels: dict[str, dict[str, list[float]]] = {}
        for s in have:
            if len(s.run.shorts) != len(shorts):
                continue
            series = s.run.model + (f" / p{s.run.paraphrase}" if s.run.paraphrase is not None else "")
            panels.setdefault(f"variant: {s.run.variant}", {})[series] = s.splits["all"].f1
        png = plots.grouped_bars(shorts, panels, title=f"{task}: per-label F1 by model and prompt variant")
        sub.add(figs.make(f"per-label-{task}", png, f"{task}: per-label F1 (all evaluated items)"))
        rows = [[s.run.name] + [fmt(f) for f in s.splits["all"].f1] for s in have]
        support = have[0].splits["all"].support
        rows.append(["support (reference positives)"] + [str(x) for x in support])
        sub.add(Table(["Cell"] + list(shorts), rows, caption=f"{task}: F1 per label"))
        for block in macro_table(task, [(s.run.name, s.splits["all"].f1, s.splits["all"].support) for s in have
                                        if len(s.run.shorts) == len(shorts)], shorts):
            sub.add(block)
        sec.add(sub)
    return sec


def _confusion(col: Collection, stats: list[RunStats]) -> Section:
    sec = Section("Confusion per label", collapsed=True)
    sec.add(Text("TP / FP / FN / TN per label and run, on all evaluated items "
                 "(invalid outputs predict nothing)."))
    for task, group in _by_task(stats).items():
        have = [s for s in group if "all" in s.splits]
        if not have:
            continue
        shorts = have[0].run.shorts
        rows = []
        for s in have:
            conf = s.splits["all"].confusion
            rows.append([s.run.name] + ["/".join(str(int(v)) for v in conf[i]) for i in range(len(conf))])
        sec.add(Table(["Cell"] + [f"{x} TP/FP/FN/TN" for x in shorts], rows, caption=f"{task}"))
    return sec


def _validity(stats: list[RunStats], figs: _Figures) -> Section:
    sec = Section("Output validity, tokens, cost and time")
    rows = []
    for s in stats:
        n = s.n_records
        per = s.seconds / n if n and not math.isnan(s.seconds) else float("nan")
        done = f"{n} of {s.run.planned} (partial)" if s.run.partial else str(n)
        rows.append([s.run.task, s.run.name, done, pct(s.invalid_rate), pct(s.repaired_rate),
                     fmt(s.tokens_in, 1), fmt(s.tokens_out, 1), fmt(per, 2), fmt(s.seconds, 1),
                     DASH if s.cost is None else f"${s.cost:.4f}"])
    sec.add(Table(["Task", "Cell", "Items", "Invalid", "Repaired", "Tokens in / item", "Tokens out / item",
                   "Seconds / item", "Seconds total", "Cost (USD)"], rows))
    names = [f"{s.run.task}: {s.run.name}" for s in stats]
    panels = {"invalid outputs (%)": [100 * s.invalid_rate for s in stats],
              "seconds per item": [s.seconds / s.n_records if s.n_records else None for s in stats],
              "output tokens per item": [s.tokens_out for s in stats]}
    sec.add(figs.make("validity-cost", plots.cell_bars(names, panels, title="Validity and cost per cell"),
                      "Invalid-output rate, time and output length per cell"))
    return sec


# ------------------------------------------------------------------------------------------------
# agreement, training, other runs
# ------------------------------------------------------------------------------------------------
def _is_stat(v) -> bool:
    """A statistic written as {"value": x, "n": n, "reason": why-undefined} (llmscisci.metrics.agreement)."""
    return isinstance(v, dict) and "value" in v and set(v) <= {"value", "n", "reason", "low", "high"}


def _scalar(v) -> bool:
    return _is_stat(v) or not isinstance(v, (dict, list)) or (
        isinstance(v, list) and all(not isinstance(x, (dict, list)) for x in v))


def _cell(v) -> str:
    if _is_stat(v):
        return "undefined" if v.get("value") is None else fmt(v["value"])
    if isinstance(v, list) and all(not isinstance(x, (dict, list)) for x in v):
        return ", ".join(_cell(x) for x in v)
    if _num(v) or v is None or isinstance(v, str):
        return fmt(v)
    return json.dumps(v, default=str)[:80]


def _flat_row(d: dict, prefix: str = "") -> dict[str, object]:
    out: dict[str, object] = {}
    for k, v in d.items():
        if isinstance(v, dict) and not _is_stat(v):
            out.update(_flat_row(v, f"{prefix}{k}."))
        else:
            out[f"{prefix}{k}"] = v
    return out


def json_tables(data, name: str = "", depth: int = 0) -> list[Table]:
    """Render a JSON value as tables: rows (a list of objects, nested objects flattened to dotted
    columns), named tables, row -> column matrices, or key/value pairs. Statistics written as
    {"value", "n", "reason"} show their value, or "undefined"."""
    if isinstance(data, list) and data and all(isinstance(r, dict) for r in data):
        rows = [_flat_row(r) for r in data]
        cols: list[str] = []
        for r in rows:
            cols += [k for k in r if k not in cols]
        return [Table(cols, [[_cell(r.get(c)) for c in cols] for r in rows], caption=name)]
    if isinstance(data, dict) and data:
        vals = list(data.values())
        if all(isinstance(v, dict) and v and not _is_stat(v) and all(_scalar(x) for x in v.values())
               for v in vals):
            cols = []
            for v in vals:
                cols += [k for k in v if k not in cols]
            return [Table([""] + cols, [[str(k)] + [_cell(v.get(c)) for c in cols] for k, v in data.items()],
                          caption=name)]
        if all(_scalar(v) for v in vals):
            return [Table(["", "value"], [[str(k), _cell(v)] for k, v in data.items()], caption=name)]
        if depth < 5:
            out: list[Table] = []
            scalars = {k: v for k, v in data.items() if _scalar(v) and v != []}
            if scalars:
                out += json_tables(scalars, name, depth + 1)
            for k, v in data.items():
                if not _scalar(v):
                    out += json_tables(v, f"{name}: {k}" if name else str(k), depth + 1)
            return out
    if isinstance(data, list) and data and all(isinstance(r, list) for r in data):
        width = max(len(r) for r in data)
        return [Table([str(i) for i in range(width)], [[_cell(x) for x in r] for r in data], caption=name)]
    return []


def _agreement(tables: list[JsonTable]) -> Section:
    sec = Section("Agreement")
    for t in tables:
        made = json_tables(t.data, t.name)
        if not made:
            sec.add(Text(f"{t.name}: no table found in this JSON.", "note"))
        for tab in made:
            sec.add(tab)
    return sec


def _flatten(d: dict, prefix: str = "", depth: int = 0) -> dict[str, object]:
    out: dict[str, object] = {}
    for k, v in d.items():
        key = f"{prefix}{k}"
        if isinstance(v, dict) and depth < 2:
            out.update(_flatten(v, key + ".", depth + 1))
        elif not isinstance(v, (dict, list)):
            out[key] = v
    return out


def _curve_keys(log: list[dict]) -> list[str]:
    keys: list[str] = []
    for rec in log:
        for k, v in rec.items():
            if k not in keys and k not in SKIP_CURVE_KEYS and _num(v):
                keys.append(k)

    def rank(k: str) -> tuple[int, int]:
        kl = k.lower()
        if kl in ("loss", "train_loss", "train/loss"):
            return (0, keys.index(k))
        if "loss" in kl:
            return (1, keys.index(k))
        if "reward" in kl:
            return (2, keys.index(k))
        if kl in ("kl", "objective/kl") or kl.endswith("/kl"):
            return (3, keys.index(k))
        return (4, keys.index(k))

    return sorted(keys, key=rank)


def _training(runs: list[TrainRun], figs: _Figures) -> Section:
    sec = Section("Training curves")
    for tr in runs:
        sub = Section(f"{tr.method}: {tr.name}", level=3)
        keys = _curve_keys(tr.log)
        series = {}
        for k in keys[:MAX_CURVES]:
            xs, ys = [], []
            for i, rec in enumerate(tr.log):
                if _num(rec.get(k)) and math.isfinite(rec[k]):
                    x = next((rec[x] for x in X_KEYS if _num(rec.get(x))), i + 1)
                    xs.append(x)
                    ys.append(float(rec[k]))
            if ys:
                series[k] = (xs, ys)
        if series:
            sub.add(figs.make(f"train-{tr.name}", plots.curves(series, title=f"{tr.method}: {tr.name}"),
                              f"{tr.method} training log ({len(tr.log)} logging steps)"))
            rows = [[k, str(len(ys)), fmt(ys[0], 4), fmt(ys[-1], 4), fmt(min(ys), 4), fmt(max(ys), 4)]
                    for k, (_, ys) in series.items()]
            sub.add(Table(["Logged", "Points", "First", "Last", "Min", "Max"], rows))
        if len(keys) > MAX_CURVES:
            sub.add(Text(f"{len(keys) - MAX_CURVES} more logged quantities not plotted: "
                         + ", ".join(keys[MAX_CURVES:]), "note"))
        if tr.config:
            flat = _flatten(tr.config)
            rows = [[k, _cell(v)] for k, v in list(flat.items())[:40]]
            if rows:
                sub.add(Table(["Setting", "Value"], rows, caption="train_config.json"))
        if tr.metrics:
            sub.add(Table(["Metric", "Value"], [[k, _cell(v)] for k, v in _flatten(tr.metrics).items()][:40],
                          caption="metrics.json"))
        sec.add(sub)
    return sec


def _other(runs: list[OtherRun]) -> Section:
    sec = Section("Other runs")
    kinds: dict[str, list[OtherRun]] = {}
    for r in runs:
        kinds.setdefault(r.kind, []).append(r)
    for kind, group in kinds.items():
        cols: list[str] = []
        flats = []
        for r in group:
            flat = {k: v for k, v in _flatten(r.metrics).items() if _num(v)}
            flats.append(flat)
            cols += [k for k in flat if k not in cols]
        cols = cols[:12]
        rows = [[r.name, str(r.config.get("task", DASH)), str(r.config.get("model", DASH))]
                + [fmt(f.get(c)) for c in cols] for r, f in zip(group, flats)]
        sec.add(Table(["Run", "Task", "Model"] + cols, rows, caption=f"{kind} runs (metrics.json)"))
    return sec
