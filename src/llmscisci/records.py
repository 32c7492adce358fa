"""The records a run folder's predictions.jsonl holds, one definition each (pydantic): a labelling
prediction (label and baseline runs, SFT/DPO/GRPO evaluations) and a judge call. Writers build them,
readers validate lines into them. Every field has a default and unknown keys are kept, so folders
written by earlier versions stay readable and nothing a newer writer adds is lost on a rewrite.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from pydantic import BaseModel, ConfigDict, ValidationError

__all__ = ["CallRecord", "CallTotals", "JudgeCall", "LabelPrediction", "is_valid", "record_type"]


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

    def to_json(self) -> dict:
        """The line written to predictions.jsonl: the fields that were given (and any extra keys)."""
        return self.model_dump(exclude_unset=True)


def is_valid(rec: dict) -> bool:
    """Whether a labelling record counts as a valid answer, the one rule every reader uses: its
    `valid` flag when it has one; a record without the flag (an annotator's or a hand-made file)
    is valid if and only if it has labels."""
    flag = rec.get("valid")
    return bool(flag) if flag is not None else rec.get("labels") is not None


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


# a run's kind (config.json "kind") -> the record its predictions.jsonl holds; kinds not named here
# (and folders written before config.json named a kind) hold labelling predictions
RECORD_TYPES: dict[str, type[CallRecord]] = {"label": LabelPrediction, "baseline": LabelPrediction,
                                             "judge": JudgeCall}


def record_type(kind: str | None) -> type[CallRecord]:
    """The record class of a run of `kind`."""
    return RECORD_TYPES.get(str(kind or "label"), LabelPrediction)


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
        self.tokens_in += rec.tokens_in or 0
        self.tokens_out += rec.tokens_out or 0
        self.seconds += rec.seconds or 0.0
        if rec.cost_usd is not None:
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
