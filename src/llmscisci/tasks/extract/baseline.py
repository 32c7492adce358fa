"""The deterministic baseline: read the BibTeX inside each ``<pre>`` of a unit with a BibTeX parser.

No model, no heuristics beyond the parser: on a page that embeds its BibTeX it should score near
100%, which shows the scorer's normalisation and joining are right; a model run reports its gap to it.
"""

from __future__ import annotations

from llmscisci.tasks.extract.html import parse_html
from llmscisci.tasks.extract.parse import coerce_record
from llmscisci.tasks.extract.schema import Publication
from llmscisci.tasks.extract.truth import parse_bibtex, record_from_fields


def bibtex_records(bibtex: str) -> list[Publication]:
    """Every entry of a BibTeX text as a Publication (values as written, LaTeX decoded)."""
    entries, _ = parse_bibtex(bibtex)
    out = []
    for d in entries:
        vals = record_from_fields(d)
        vals.pop("month", None)
        vals["confidence_score"] = 1.0
        out.append(coerce_record(vals))
    return out


def baseline_extract(unit_html: str) -> list[Publication]:
    """Records of one unit: the BibTeX of its ``<pre>`` blocks (HTML entities decoded by the parser).
    A unit without ``<pre>`` (or with a cut-off one) yields what parses, possibly nothing."""
    soup = parse_html(unit_html)
    out: list[Publication] = []
    for pre in soup.find_all("pre"):
        text = pre.get_text()
        if "@" in text:
            out.extend(bibtex_records(text))
    return out
