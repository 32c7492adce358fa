"""The report's "Robustness of conclusions" section, from `llmscisci robustness --json-out` files found in
the report's folder: per task, the summary across configurations, the drivers, and a forest plot per
category with one panel per estimand (overall share, group shares, contrasts) and one row per
configuration, naive and corrected (PPI, DSL) side by side, the coded sample's own estimate as a line."""

from __future__ import annotations

from collections.abc import Callable
from functools import partial

from llmscisci.console import pct
from llmscisci.report import plots
from llmscisci.report.document import Figure, Section, Table, Text

MARKERS = {"naive": ("o", "#8C8C8C"), "ppi": ("s", "#4C72B0"), "dsl": ("D", "#DD8452")}
TITLES = {"naive": "naive", "ppi": "PPI", "dsl": "DSL"}
OFFSET = {"naive": 0.22, "ppi": 0.0, "dsl": -0.22}


_pct = partial(pct, digits=0)


def _rates(methods: dict, key: str) -> str:
    return " / ".join(_pct(methods[m][key]) for m in ("naive", "ppi", "dsl"))


def _range(methods: dict, m: str) -> str:
    sp = methods[m]["spread"]
    return "—" if sp is None else f"{100 * sp['range']:.1f}"


@plots._styled
def forest(names: list[str], estimands: list[dict], title: str) -> bytes:
    """One panel per estimand, one row per configuration; naive, PPI and DSL markers with their intervals
    offset within the row; a dashed line at the coded sample's estimate (and a grey one at 0 for
    contrasts)."""
    k = len(estimands)
    fig = plots._new(min(3.2 * k + 2.4, 14), 1.3 + 0.42 * max(len(names), 2))
    axes = fig.subplots(1, k, sharey=True, squeeze=False)[0]
    ys = list(range(len(names)))[::-1]
    for ax, e in zip(axes, estimands):
        plots._style(ax)
        signed = e["kind"] == "contrast"
        for y, pc in zip(ys, e["per_configuration"]):
            for m, (marker, col) in MARKERS.items():
                p = pc[m]
                if p["estimate"] is None:
                    continue
                lo, hi = p["low"], p["high"]
                ax.errorbar(
                    p["estimate"],
                    y + OFFSET[m],
                    xerr=[[max(p["estimate"] - lo, 0)], [max(hi - p["estimate"], 0)]],
                    fmt=marker,
                    color=col,
                    ecolor=col,
                    elinewidth=1.6,
                    capsize=2,
                    markersize=4,
                    label=TITLES[m] if y == ys[0] else None,
                )
        if e["coded"]["estimate"] is not None:
            ax.axvline(
                e["coded"]["estimate"], color="#55A868", linestyle="--", linewidth=1.2, label="coded sample"
            )
        if signed:
            ax.axvline(0, color="#999999", linewidth=0.8)
            ax.set_xlim(-1.02, 1.02)
        else:
            ax.set_xlim(-0.02, 1.02)
        ax.set_title(("difference " if signed else "share ") + e["what"])
        ax.set_ylim(-0.7, len(names) - 0.3)
    axes[0].set_yticks(ys, [plots._short(n, 30) for n in names])
    handles, labels = axes[0].get_legend_handles_labels()
    if handles:
        fig.legend(handles, labels, loc="outside lower center", ncol=len(labels), frameon=False)
    fig.suptitle(title, fontsize=11)
    return plots.to_png(fig)


def section(files: list, make_figure: Callable[[str, bytes, str], Figure]) -> Section:
    """`files`: objects with .name and .data (a `llmscisci robustness` JSON)."""
    sec = Section("Robustness of conclusions")
    sec.add(
        Text(
            "Each configuration (model, prompt variant, wording, seed or label file) estimates every "
            "category's share overall and per group, and each contrast between groups, naive (its labels "
            "taken as truth) and corrected with the human-coded sample (PPI: prediction-powered inference; "
            "DSL: design-based supervised learning). A contrast is the difference of two group shares, each "
            "corrected within its group with that group's coded items, variances summed. Verdict: >0 or <0 "
            "when the interval excludes 0, else not distinguishable. Disagreement: share of configurations "
            "whose verdict differs from the most common corrected verdict; sign error: a significant verdict "
            "opposite in sign to the coded sample's estimate."
        )
    )
    for f in files:
        data = f.data
        for task, res in data["tasks"].items():
            sub = Section(f"{task} ({f.name})", level=3)
            names = [c.get("label") or c["name"] for c in res["configurations"]]
            pct = round(res["level"] * 100)
            sub.add(
                Text(
                    f"{len(names)} configurations, {res['n_items']} items, {res['n_coded']} coded; "
                    f"{res['design']}. Intervals {pct}%.",
                    "note",
                )
            )
            rows = []
            for e in res["estimands"]:
                s = e["summary"]
                m = s["methods"]
                rows.append(
                    [
                        e["category"],
                        e["what"],
                        _range(m, "naive"),
                        _range(m, "ppi"),
                        s["modal_corrected_verdict"] or "—",
                        _rates(m, "disagreement_rate"),
                        _rates(m, "sign_error_rate"),
                    ]
                )
            sub.add(
                Table(
                    [
                        "Category",
                        "Estimand",
                        "Range naive (points)",
                        "Range PPI (points)",
                        "Modal corrected verdict",
                        "Disagreement naive / PPI / DSL",
                        "Sign errors naive / PPI / DSL",
                    ],
                    rows,
                    caption="Across configurations",
                )
            )
            drv = res.get("drivers", {})
            if drv.get("naive"):
                drows = []
                for factor, n in drv["naive"].items():
                    p = drv["ppi"][factor]

                    def eta(d: dict) -> str:
                        return "—" if d["eta_squared"] is None else f"{d['eta_squared']:.2f}"

                    drows.append(
                        [
                            factor,
                            str(len(n["levels"])),
                            eta(n),
                            eta(p),
                            f"{n['flips']}/{n['compared']}",
                            f"{p['flips']}/{p['compared']}",
                        ]
                    )
                sub.add(
                    Table(
                        [
                            "Factor",
                            "Levels",
                            "η² naive",
                            "η² PPI",
                            "Verdict flips naive",
                            "Verdict flips PPI",
                        ],
                        drows,
                        caption="What moves the estimates and flips the verdicts",
                    )
                )
            by_cat: dict[str, list[dict]] = {}
            for e in res["estimands"]:
                by_cat.setdefault(e["category"], []).append(e)
            for cat, ests in by_cat.items():
                png = forest(names, ests, f"{task}: {cat}")
                sub.add(
                    make_figure(
                        f"robustness-{task}-{cat}",
                        png,
                        f"{task}, {cat}: one panel per estimand, one row per configuration; naive "
                        f"(grey), PPI (blue), DSL (orange) with {pct}% intervals; dashed: the coded "
                        "sample alone.",
                    )
                )
            sec.add(sub)
    return sec
