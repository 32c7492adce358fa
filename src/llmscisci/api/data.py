"""Building the reports dataset from Python, as `llmscisci data build` does: `ls.build_data` reads the
ReScience MLRC LaTeX sources (a checkout, by default the one `llmscisci data fetch` writes) into a data
folder (mlrc_reports.csv, a per-report ingestion log and summary)."""

from __future__ import annotations

from pathlib import Path
from typing import Callable

from llmscisci.errors import UserError

DEFAULT_CHECKOUT = "mlrc"  # under the user cache directory


def default_checkout() -> Path:
    """Where `data fetch` unpacks the repository by default."""
    from llmscisci.paths import cache_dir

    return cache_dir() / DEFAULT_CHECKOUT


def parse_years(raw) -> list[str] | None:
    """Editions as a list of year strings: from "2020,2021", a list of years, or None (every year)."""
    if not raw:
        return None
    parts = raw.split(",") if isinstance(raw, str) else [str(y) for y in raw]
    years = [y.strip() for y in parts if y.strip()]
    bad = [y for y in years if not y.isdigit()]
    if bad:
        raise UserError(f"--years takes comma-separated years (e.g. 2020,2021), got {', '.join(bad)}")
    return years


def build_data(out, *, mlrc=None, years=None, merged: str = "easy", overwrite: bool = False,
               progress: Callable | None = None):
    """Build mlrc_reports.csv in the folder `out` from the LaTeX sources in `mlrc` (default: the checkout
    `data fetch` wrote), `years` the editions to read (default all); `merged`: where a merged "What was
    easy and difficult" part goes (easy or both). Returns the BuildResult (`.rows`, `.logs`);
    `progress` wraps the iteration over report folders (a progress bar)."""
    from llmscisci.data.ingest.build import MERGED_POLICIES, build, write_output
    from llmscisci.runs import versions

    if merged not in MERGED_POLICIES:
        raise UserError(f"--merged must be one of {', '.join(MERGED_POLICIES)}, got {merged!r}")
    root = Path(mlrc) if mlrc is not None else default_checkout()
    if mlrc is None and not root.is_dir():
        raise UserError(f"no --mlrc given and no fetched checkout at {root}: run `llmscisci data fetch` or pass "
                        "--mlrc PATH")
    out = Path(out)
    if out.exists() and any(out.iterdir()) and not overwrite:
        raise UserError(f"output folder {out} exists and is not empty (pass --overwrite to replace its files)")
    yrs = parse_years(years)
    result = build(root, yrs, merged_policy=merged, progress=progress)
    write_output(result, out, root=str(root), overwrite=overwrite,
                 info={"years": yrs, "merged_policy": merged, "versions": versions()})
    return result
