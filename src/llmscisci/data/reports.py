"""Reports: one row per reproducibility report, from the toolkit's CSV or the JCDL 2023 study's file."""

from __future__ import annotations

import io
from pathlib import Path

import pandas as pd

from llmscisci.data.problems import Collector
from llmscisci.data.textio import read_text
from llmscisci.errors import DataError

REPORTS_FILE = "mlrc_reports.csv"
REQUIRED = ("doi", "title", "easy", "difficult")
OPTIONAL = ("mlrc_year", "volume", "issue", "review_id", "easy_long", "difficult_long", "scope")
# The JCDL 2023 study's file (ReScience_JCDL-23.csv) -> the toolkit's columns.
STUDY_COLUMNS = {"easiness_longform": "easy_long", "difficult_longform": "difficult_long"}
STUDY_MARKER = "reason_for_easiness"


def read_csv(path: str | Path, encoding: str | None = None) -> pd.DataFrame:
    """Read a CSV as strings (no NaN): UTF-8 with or without BOM, or the named `encoding`; a file that
    does not decode is a DataError naming its first bad line (never a silent change of encoding)."""
    path = Path(path)
    text = read_text(path, encoding)
    try:
        return pd.read_csv(io.StringIO(text), dtype=str, keep_default_na=False)
    except (pd.errors.ParserError, pd.errors.EmptyDataError) as exc:
        raise DataError(path, f"not a readable CSV ({str(exc).splitlines()[0]})") from None


def is_study_format(df: pd.DataFrame) -> bool:
    return STUDY_MARKER in df.columns


def load_reports(source: str | Path, collector: Collector | None = None,
                 text_columns: tuple[str, ...] = ("easy", "difficult")) -> pd.DataFrame:
    """Load reports from a data directory (its mlrc_reports.csv) or a CSV file in either format.

    Returns one row per report with the columns doi, title, easy, difficult and the optional ones
    (empty strings where absent). Empty texts in `text_columns` (the task being run) are warnings, not
    errors; the other text columns are not checked.
    """
    col = collector or Collector(strict=True)
    path = Path(source)
    if path.is_dir():
        path = path / REPORTS_FILE
    df = read_csv(path)
    if is_study_format(df):
        df = df.rename(columns=STUDY_COLUMNS)
        if "mlrc_year" not in df.columns:
            df["mlrc_year"] = ""
    for c in REQUIRED:
        if c not in df.columns:
            col.error(path, f"missing column (found: {', '.join(df.columns[:12])})", column=c)
            df[c] = ""
    for c in OPTIONAL:
        if c not in df.columns:
            df[c] = ""
    for c in df.columns:
        df[c] = df[c].astype(str).str.strip()
    seen: dict[str, int] = {}
    for i, doi in enumerate(df["doi"], start=1):
        if not doi:
            col.error(path, "empty DOI", row=i, column="doi")
        elif doi in seen:
            col.error(path, f"duplicate DOI {doi} (first at row {seen[doi]})", row=i, column="doi")
        else:
            seen[doi] = i
    for c in text_columns:
        if c not in df.columns:
            continue
        for i, text in enumerate(df[c], start=1):
            if not text:
                col.warning(path, "empty text", row=i, column=c)
    for i, year in enumerate(df["mlrc_year"], start=1):
        if year and not year.isdigit():
            col.error(path, f"not a year: {year!r}", row=i, column="mlrc_year")
    df.attrs["path"] = str(path)
    return df.reset_index(drop=True)
