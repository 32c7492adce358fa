"""OpenAlex work records -> flat corpus records: the abstract rebuilt from `abstract_inverted_index`.

OpenAlex does not ship abstracts as text but as an inverted index (word -> positions). `work_record`
rebuilds the text into a column named `abstract` and keeps id, DOI, title, publication year, type and
primary topic as metadata columns.
"""

from __future__ import annotations

OPENALEX = "https://openalex.org/"
DOI_PREFIXES = ("https://doi.org/", "http://doi.org/", "https://dx.doi.org/", "doi:")
COLUMNS = ("id", "doi", "title", "publication_year", "type", "primary_topic", "abstract")


def is_work(obj: dict) -> bool:
    """Whether a JSON object looks like an OpenAlex work."""
    return "abstract_inverted_index" in obj or str(obj.get("id", "")).startswith(OPENALEX + "W")


def rebuild_abstract(index: dict | None) -> str:
    """The abstract's text from an inverted index {word: [positions]} ('' when there is none)."""
    if not index:
        return ""
    slots: dict[int, str] = {}
    for word, positions in index.items():
        for pos in positions or ():
            slots[int(pos)] = word
    return " ".join(slots[k] for k in sorted(slots))


def short_id(value) -> str:
    text = str(value or "").strip()
    return text[len(OPENALEX):] if text.startswith(OPENALEX) else text


def bare_doi(value) -> str:
    text = str(value or "").strip()
    low = text.lower()
    for prefix in DOI_PREFIXES:
        if low.startswith(prefix):
            return text[len(prefix):]
    return text


def work_record(work: dict) -> dict:
    """One flat record of an OpenAlex work (the columns of COLUMNS)."""
    topic = work.get("primary_topic") or {}
    year = work.get("publication_year")
    return {
        "id": short_id(work.get("id")),
        "doi": bare_doi(work.get("doi")),
        "title": (work.get("title") or work.get("display_name") or "").strip(),
        "publication_year": int(year) if isinstance(year, (int, float)) or str(year or "").isdigit() else None,
        "type": work.get("type") or "",
        "primary_topic": topic.get("display_name", "") if isinstance(topic, dict) else str(topic),
        "abstract": rebuild_abstract(work.get("abstract_inverted_index")),
    }
