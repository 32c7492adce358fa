"""The records a run folder's predictions.jsonl holds, one definition each (pydantic): a labelling
prediction (label and baseline runs, SFT/DPO/GRPO evaluations), a judge call and an extraction unit.
Writers build them, readers validate lines into them (`RunFolder.predictions()`, `typed()`). Every field
has a default and unknown keys are kept, so folders written by earlier versions stay readable and
nothing a newer writer adds is lost on a rewrite.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field

from pydantic import BaseModel, ConfigDict, ValidationError

__all__ = ["CallRecord", "CallTotals", "ExtractUnit", "JudgeCall", "LabelPrediction", "is_valid", "record_type",
           "typed"]


class CallRecord(BaseModel):
    """What every model call records: the item, the raw answer and its tokenomics."""

    model_config = ConfigDict(extra="allow", coerce_numbers_to_str=True)  # a numeric id reads as text

    doi: str | None = None
    task: str | None = None
    split: str | None = None
    prompt_hash: str | None = None
    raw: str | None = None
    tokens_in: int | None = None
    tokens_out: int | None = None
    seconds: float | None = None
    error: str | None = None
    refusal: bool = False
    cached: bool = False
    model_version: str | None = None
    cost_usd: float | None = None
    call_failed: bool = False  # no answer at all (a resumed run asks again)

    @classmethod
    def read(cls, rec: dict):
        """A predictions.jsonl line as a record; a line of an unexpected shape is kept as it is (its
        fields unchecked) rather than refused, so an old or hand-edited folder still reads."""
        try:
            return cls.model_validate(rec)
        except ValidationError:
            return cls.model_construct(**rec)

    @property
    def item_key(self) -> tuple:
        return (self.doi, self.task)

    @property
    def key(self) -> tuple:
        """What one call answers; a run folder holds one record per key (the latest attempt)."""
        return self.item_key

    @classmethod
    def line_key(cls, rec: dict) -> tuple:
        """`key` of a line as read (a dict), without validating it."""
        return (rec.get("doi"), rec.get("task"))

    def to_json(self) -> dict:
        """The line written to predictions.jsonl: the fields that were given (and any extra keys)."""
        return self.model_dump(exclude_unset=True)


def is_valid(rec) -> bool:
    """Whether a labelling record counts as a valid answer, the one rule every reader uses: its
    `valid` flag when it has one; a record without the flag (an annotator's or a hand-made file)
    is valid if and only if it has labels. `rec`: a record object, or a dict as a hand-made file holds."""
    if isinstance(rec, dict):
        flag, labels = rec.get("valid"), rec.get("labels")
    else:  # a flag the line did not carry is its default, not an answer: the labels decide
        flag = getattr(rec, "valid", None) if "valid" in rec.model_fields_set else None
        labels = getattr(rec, "labels", None)
    return bool(flag) if flag is not None else labels is not None


class LabelPrediction(CallRecord):
    """One item's labels: the parsed answer (None: invalid), whether it was valid or repaired by the label
    validator, and the reference when the item has one."""

    labels: list[int] | None = None
    valid: bool = False
    repaired: bool = False
    exact_format: bool = False
    reference: list[int] | None = None
    empty: bool = False  # an empty text: no model call, counted as an invalid output
    meta: dict | None = None  # the item's grouping columns
    fold: int | None = None  # baselines: the cross-validation fold
    scores: dict[str, float] | None = None  # the score variant: calibrated log-odds per scored category
    text_sha: str | None = None  # the text's fingerprint (a resume checks the texts are unchanged)


class JudgeCall(CallRecord):
    """One judge call: one item in one candidate order, the judge's scores, the exact ones, and its final
    classification."""

    order_id: int | None = None
    order: list[str] = []
    valid: bool = False
    scores_valid: bool = False
    final_valid: bool = False
    problems: list = []
    judge_scores: dict[str, int | float | None] = {}
    exact_scores: dict[str, int] = {}
    final_labels: list[int] | None = None
    final_repaired: bool = False
    final_source: str | None = None
    truth: list[int] = []
    llm_labels: dict[str, list[int] | None] = {}

    @property
    def key(self) -> tuple:
        """(doi, task, order): one call per item and candidate order."""
        return (self.doi, self.task, tuple(self.order))

    @classmethod
    def line_key(cls, rec: dict) -> tuple:
        return (rec.get("doi"), rec.get("task"), tuple(rec.get("order") or ()))


class ExtractUnit(CallRecord):
    """One extraction unit's call: `doi` holds the unit id (an extraction item is a unit), the unit's
    text and true DOIs, the parsed publication records (None: invalid) and the deterministic baseline's
    records for the same text."""

    unit: str | None = None
    kind: str | None = None  # the unit's kind (a block, a page)
    blocks: list[int] = []
    truth_dois: list[str] = []
    input: str = ""
    valid: bool = False
    repaired: bool = False
    parse_error: str | None = None
    records: list[dict] | None = None
    baseline_records: list[dict] = []
    truncated: bool = False


# a run's kind (config.json "kind") -> the record its predictions.jsonl holds; kinds not named here
# (and folders written before config.json named a kind) hold labelling predictions
RECORD_TYPES: dict[str, type[CallRecord]] = {"label": LabelPrediction, "baseline": LabelPrediction,
                                             "judge": JudgeCall, "extract": ExtractUnit}


def record_type(kind: str | None) -> type[CallRecord]:
    """The record class of a run of `kind`."""
    return RECORD_TYPES.get(str(kind or "label"), LabelPrediction)


def typed(records: Iterable, cls: type[CallRecord] = LabelPrediction) -> Iterator[CallRecord]:
    """`records` as record objects: a dict (a line as read, a hand-made record) is read as `cls`, a record
    object is kept. Lets a public function take either while callers move to records."""
    for rec in records:
        yield rec if isinstance(rec, CallRecord) else cls.read(rec)


def _number(v, default=0):
    """`v` when it is a number: a line kept unvalidated (`CallRecord.read`) may hold anything."""
    return v if isinstance(v, (int, float)) and not isinstance(v, bool) else default


@dataclass
class CallTotals:
    """What a run's calls add up to: items, failed and unanswered calls, refusals, empty texts, tokens,
    cost and model versions. One definition, used by every finisher, `eval`, the report and `Run`."""

    n: int = 0
    failed: int = 0  # records with an error (no usable answer)
    unanswered: int = 0  # the latest attempt got no answer at all (`call_failed`)
    last_error: str | None = None  # the error of the last unanswered item
    refusals: int = 0
    empty: int = 0  # empty texts: labelled `none` without a call
    tokens_in: int = 0
    tokens_out: int = 0
    cost_usd: float | None = None  # None when no record carried a price
    seconds: float = 0.0  # generation seconds summed over the calls
    versions: set[str] = field(default_factory=set)

    def add(self, rec: CallRecord) -> None:
        self.n += 1
        self.failed += bool(rec.error)
        if rec.call_failed:
            self.unanswered, self.last_error = self.unanswered + 1, rec.error
        self.refusals += bool(rec.refusal)
        self.empty += bool(getattr(rec, "empty", False))
        self.tokens_in += _number(rec.tokens_in)
        self.tokens_out += _number(rec.tokens_out)
        self.seconds += _number(rec.seconds)
        if _number(rec.cost_usd, None) is not None:
            self.cost_usd = (self.cost_usd or 0.0) + rec.cost_usd
        if rec.model_version:
            self.versions.add(rec.model_version)

    @classmethod
    def from_records(cls, records: Iterable[CallRecord]) -> "CallTotals":
        totals = cls()
        for rec in records:
            totals.add(rec)
        return totals

    def as_metrics(self) -> dict:
        """The keys metrics.json has always used for these totals."""
        out = {"failed": self.failed, "unanswered": self.unanswered, "last_error": self.last_error,
               "refusals": self.refusals, "empty": self.empty,
               "tokens": {"in": self.tokens_in, "out": self.tokens_out},
               "cost_usd": round(self.cost_usd, 6) if self.cost_usd is not None else None,
               "generation_seconds": round(self.seconds, 3)}
        if self.versions:
            out["model_versions"] = sorted(self.versions)
        return out
