"""The records a run folder's predictions.jsonl holds, one definition each (pydantic): a labelling
prediction (label and baseline runs, SFT/DPO/GRPO evaluations) and a judge call. Writers build them,
readers validate lines into them. Every field has a default and unknown keys are kept, so folders
written by earlier versions stay readable and nothing a newer writer adds is lost on a rewrite.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, ValidationError

__all__ = ["CallRecord", "JudgeCall", "LabelPrediction", "is_valid"]


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
