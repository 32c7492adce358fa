"""The extraction schema (the seed's): one publication record, and the list the model returns per unit.

`Publication` is what the task works with (lenient: every field optional). `decoding_schema(n)` is what
the structured variant hands the backend: every field required but nullable, so constrained decoding
writes each key once, in order, and a missing value is an explicit ``null``.
"""

from __future__ import annotations

from functools import lru_cache

from pydantic import BaseModel, ConfigDict, Field, create_model

# Scored fields, in schema order. `issue` is BibTeX's `number`.
FIELDS: tuple[str, ...] = ("pub_title", "doi", "journal", "year", "authors", "volume", "issue", "pages", "url")


# Longest value kept per text field when a free-text answer is read (longer values are cut).
MAX_CHARS = {"pub_title": 400, "doi": 120, "journal": 120, "volume": 20, "issue": 20, "pages": 30, "url": 300,
             "author": 100, "warning": 200}


class Publication(BaseModel):
    """One publication record as extracted from the page."""

    model_config = ConfigDict(extra="ignore")

    pub_title: str | None = Field(None, description="Title of the article.")
    doi: str | None = Field(None, description="The article's DOI, as written on the page.")
    journal: str | None = Field(None, description="Journal name.")
    year: int | None = Field(None, description="Publication year.")
    authors: list[str] = Field(default_factory=list, description="Author names, one per entry, in page order.")
    volume: str | None = Field(None, description="Journal volume.")
    issue: str | None = Field(None, description="Journal issue (BibTeX number).")
    pages: str | None = Field(None, description="Pages or article number.")
    url: str | None = Field(None, description="URL of the article, as written on the page.")
    confidence_score: float | None = Field(None, ge=0.0, le=1.0,
                                           description="How sure the extractor is of this record, 0 to 1.")
    extraction_warnings: list[str] = Field(default_factory=list,
                                           description="Problems noticed: missing or ambiguous fields.")


class PublicationList(BaseModel):
    """The per-unit answer: every publication found in the unit."""

    publications: list[Publication] = Field(default_factory=list)


# ---- the decoding schema -----------------------------------------------------------------------------
# Lists are bounded so a constrained answer stays finite. Strings are not: a maxLength makes the
# constrained-decoding automaton explode (a 400-character bound on the title alone took 30 s to compile
# for smollm2's vocabulary, against 2 s without), so string length is left to max_new_tokens.
MAX_AUTHORS = 40
MAX_WARNINGS = 4


@lru_cache(maxsize=None)
def decoding_schema(max_records: int = 1) -> type[BaseModel]:
    """The schema handed to the backend for the structured variant: PublicationList with every key
    required (nullable), bounded lists, and at most `max_records` records. Cached, so one run hands
    the backend one class (compiling it is the expensive part of constrained decoding)."""
    rec = create_model(
        "PublicationRecord",
        __config__=ConfigDict(extra="forbid"),
        pub_title=(str | None, ...),
        doi=(str | None, ...),
        journal=(str | None, ...),
        year=(int | None, ...),
        authors=(list[str], Field(..., max_length=MAX_AUTHORS)),
        volume=(str | None, ...),
        issue=(str | None, ...),
        pages=(str | None, ...),
        url=(str | None, ...),
        confidence_score=(float, ...),
        extraction_warnings=(list[str], Field(..., max_length=MAX_WARNINGS)),
    )
    return create_model(
        "PublicationRecords",
        __config__=ConfigDict(extra="forbid"),
        publications=(list[rec], Field(..., max_length=max(1, int(max_records)))),
    )
