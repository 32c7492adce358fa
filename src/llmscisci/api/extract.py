"""`ls.extract(...)`: the Python face of `llmscisci extract` (bibliographic records from a journal's
HTML page, scored against a BibTeX answer key); one `Run` per page."""

from __future__ import annotations

from pathlib import Path

from llmscisci.api.options import backend_settings, batch_options, load_run_backend, split_options
from llmscisci.api.progress import show_progress
from llmscisci.api.run import Run
from llmscisci.errors import UserError


def extract(pages, *, model: str = "smollm2-135m", variant: str | None = None, unit: str = "block",
            window: int = 3, limit: int | None = None, bib: str | Path | None = None,
            data_dir: str | Path | None = None, out: str | Path = "runs", max_new_tokens: int | None = None,
            temperature: float = 0.0, seed: int = 2025, bins: int = 5, fetch_timeout: float = 30.0,
            progress: bool | None = None, **options):
    """Extract records from `pages` (an HTML file, a folder of them, a URL, or a list) with `model`
    (`"baseline"`: the deterministic BibTeX baseline only); returns a Run, or a list for several pages.
    Backend options default as the command's (`batch_size=4`)."""
    from llmscisci.backends.base import GenParams
    from llmscisci.backends.batch import BatchPending
    from llmscisci.paths import data_dir as resolve_data_dir
    from llmscisci.prompts.extract import VARIANTS
    from llmscisci.tasks.extract.html import UNITS, split_blocks
    from llmscisci.tasks.extract.run import BASELINE, ExtractSpec, default_max_new_tokens, run_extract
    from llmscisci.tasks.extract.source import read_page
    from llmscisci.tasks.extract.truth import load_truth

    backend_opts, batch_kw, _ = split_options(options)
    settings = backend_settings({"batch_size": 4, **backend_opts})
    batch = batch_options(**batch_kw)
    is_baseline = model == BASELINE
    if is_baseline and batch is not None:
        raise UserError("--batch and --batch-file need a model, not the baseline")
    if not is_baseline and variant is None:
        raise UserError(f"--variant is required with a model: one of {', '.join(VARIANTS)}")
    if variant is not None and variant not in VARIANTS:
        raise UserError(f"unknown variant {variant!r}: use one of {', '.join(VARIANTS)}")
    if unit not in UNITS:
        raise UserError(f"unknown unit {unit!r}: use one of {', '.join(UNITS)}")
    for name, value in (("--window", window), ("--limit", limit), ("--bins", bins),
                        ("--max-new-tokens", max_new_tokens)):
        if value is not None and value < 1:
            raise UserError(f"{name} must be at least 1")
    single = isinstance(pages, (str, Path))
    page_list = _expand([str(p) for p in ([pages] if single else pages)])
    bib_path = Path(bib) if bib is not None else resolve_data_dir(data_dir) / "rescience" / "published.bib"
    truth = load_truth(bib_path)
    params = GenParams(max_new_tokens=max_new_tokens or default_max_new_tokens(unit, window),
                       temperature=temperature, seed=seed)
    spec = ExtractSpec(variant=variant or "structured", model=model, unit=unit, window=window, limit=limit,
                       params=params, bins=bins)
    sources = []
    for page in page_list:
        src = read_page(page, timeout=fetch_timeout)
        sources.append((src, split_blocks(src.text, src.origin)))  # a page without records fails here
    backend = None if is_baseline else load_run_backend(model, settings.options(), batch)
    runs = []
    for src, blocks in sources:
        try:
            run = run_extract(spec, src, truth, backend, out, show_progress=show_progress(progress), blocks=blocks)
            runs.append(Run(run.path))
        except BatchPending as exc:
            runs.append(Run(exc.run_dir))
    return runs[0] if single and len(runs) == 1 else runs


def _expand(pages: list[str]) -> list[str]:
    """Pages as given; a folder stands for its *.html and *.htm files (sorted)."""
    found = []
    for p in pages:
        path = Path(p)
        if not p.startswith(("http://", "https://")) and path.is_dir():
            inside = sorted(q for q in path.iterdir() if q.suffix.lower() in (".html", ".htm") and q.is_file())
            if not inside:
                raise UserError(f"{path}: a folder without .html or .htm pages")
            found += [str(q) for q in inside]
        else:
            found.append(p)
    return found
