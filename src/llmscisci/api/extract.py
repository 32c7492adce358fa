"""`ls.extract(...)`: the Python face of `llmscisci extract` (bibliographic records from a journal's
HTML page, scored against a BibTeX answer key); one `Run` per page. The same checks and runner as the
command (api/extract_runs.py), so the same input gives the same run folder."""

from __future__ import annotations

import inspect
from pathlib import Path

from llmscisci.api.options import backend_settings, batch_options, split_options
from llmscisci.api.progress import show_progress
from llmscisci.api.run import Run


def extract(pages=None, *, model: str = "smollm2-135m", variant: str | None = None, unit: str = "block",
            window: int = 3, limit: int | None = None, bib: str | Path | None = None,
            data_dir: str | Path | None = None, out: str | Path = "runs", max_new_tokens: int | None = None,
            temperature: float = 0.0, seed: int = 2025, bins: int = 5, fetch_timeout: float = 30.0,
            progress: bool | None = None, resume: str | Path | None = None, dry_run: bool = False,
            **options):
    """Extract records from `pages` (an HTML file, a folder of them, a URL, or a list) with `model`
    (`"baseline"`: the deterministic BibTeX baseline only); returns a Run, or a list for several pages.
    Backend options default as the command's (`batch_size=4`). `resume=RUN_DIR` continues one page's run
    in that folder (as `--resume`: its page, options and answer key unless given; another value of an
    option is refused); `dry_run=True` returns the plan that `--dry-run` prints (`.text`) and
    writes nothing."""
    from llmscisci.api.extract_runs import extract_runs

    backend_opts, batch_kw, _ = split_options(options)
    # a resumed run keeps its options: those given at another value than extract()'s default are compared
    asked = dict(model=model, variant=variant, unit=unit, window=window, limit=limit,
                 max_new_tokens=max_new_tokens, temperature=temperature, seed=seed, bins=bins)
    given = {k: v for k, v in asked.items() if v != DEFAULTS[k]}
    settings = backend_settings({"batch_size": 4, **backend_opts})
    batch = batch_options(**batch_kw)
    single = pages is None or isinstance(pages, (str, Path))
    page_list = [] if pages is None else [pages] if single else list(pages)
    done = extract_runs(page_list, model=model, opts=settings.options(), variant=variant, unit=unit,
                        window=window, limit=limit, bib=bib, data_dir=data_dir, out_dir=out, run_dir=resume,
                        max_new_tokens=max_new_tokens, temperature=temperature, seed=seed, bins=bins,
                        fetch_timeout=fetch_timeout, batch=batch, dry_run=dry_run,
                        progress=show_progress(progress), given=given)
    if dry_run:
        return done
    runs = [Run(d.pending.run_dir if d.pending is not None else d.run.path) for d in done]
    return runs[0] if single and len(runs) == 1 else runs


DEFAULTS = {k: p.default for k, p in inspect.signature(extract).parameters.items()}
