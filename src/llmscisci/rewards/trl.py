"""Adapters from the pure reward functions to TRL's reward-function signature.

TRL's GRPOTrainer calls each reward as ``f(prompts=..., completions=..., completion_ids=...,
**columns)`` where every dataset column other than ``prompt`` arrives as a keyword list aligned with
``completions`` (here: ``labels``, ``task``, ``doi``), plus ``trainer_state``, ``log_extra`` and
``log_metric``; it expects one float (or None: not applicable) per completion and names the reward
after ``f.__name__``. Completions are plain strings (standard datasets) or message lists
(conversational datasets: ``[{"role": "assistant", "content": "..."}]``); both are accepted.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence

# (texts, truths, groups, lengths) -> one reward per text. truths: the `labels` column as 0/1 tuples
# (None per empty cell; the whole list None when the reward needs no truth or there is no column);
# groups: the `task` column or None; lengths: each row's label-vector length (None: unknown).
BatchFn = Callable[[list[str], "list[tuple[int, ...] | None] | None", "list | None", "list[int | None] | None"],
                   "list[float | None]"]


def _content(content) -> str:
    if content is None:
        return ""
    if isinstance(content, str):
        return content
    if isinstance(content, list):  # content parts: [{"type": "text", "text": "..."}]
        parts = []
        for p in content:
            if isinstance(p, dict):
                parts.append(str(p.get("text", p.get("content", "")) or ""))
            elif isinstance(p, str):
                parts.append(p)
        return "".join(parts)
    return str(content)


def completion_text(completion) -> str:
    """The text of a completion: a string as is; a message list -> its assistant content (all
    messages' content when none is marked assistant); a single message dict -> its content."""
    if completion is None:
        return ""
    if isinstance(completion, str):
        return completion
    if isinstance(completion, dict):
        return _content(completion.get("content"))
    if isinstance(completion, (list, tuple)):
        msgs = [m for m in completion if isinstance(m, dict)]
        if not msgs:
            return "".join(x for x in completion if isinstance(x, str))
        chosen = [m for m in msgs if m.get("role") == "assistant"] or msgs
        return "".join(_content(m.get("content")) for m in chosen)
    return str(completion)


_BITS = frozenset((0, 1))


def truth_of(value) -> tuple[int, ...] | None:
    """A ground-truth label vector from a dataset cell: a list/tuple/array of 0/1, or its JSON text."""
    if value is None:
        return None
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except json.JSONDecodeError:
            return None
    try:
        vec = tuple(map(int, value))
    except (TypeError, ValueError):
        return None
    if not vec or not _BITS.issuperset(vec):
        return None
    return vec


def _length(value) -> int | None:
    if value is None:
        return None
    if isinstance(value, (list, tuple)):
        return len(value) or None
    t = truth_of(value)
    return len(t) if t is not None else None


class TrlReward:
    """One named reward with TRL's signature. ``needs_labels``: the dataset must have a ``labels``
    column (ground truth, one vector per row); rows whose cell is empty get None."""

    def __init__(self, name: str, batch_fn: BatchFn, needs_labels: bool = False, bounds=(0.0, 1.0)):
        self.__name__ = name
        self.name = name
        self.batch_fn = batch_fn
        self.needs_labels = needs_labels
        self.bounds = bounds

    def __repr__(self) -> str:
        return f"TrlReward({self.name!r}, bounds={self.bounds})"

    def __call__(self, prompts: Sequence | None = None, completions: Sequence | None = None, **kwargs):
        texts = [completion_text(c) for c in (completions or [])]
        labels = kwargs.get("labels")
        truths = lengths = None
        if labels is not None:
            if len(labels) != len(texts):
                raise ValueError(f"reward {self.name!r}: {len(labels)} labels for {len(texts)} completions")
            if self.needs_labels:
                truths = [truth_of(v) for v in labels]
                lengths = [len(t) if t is not None else None for t in truths]
            else:  # only the vector length matters
                lengths = [_length(v) for v in labels]
        elif self.needs_labels:
            raise ValueError(f"reward {self.name!r} needs the ground truth: the dataset must have a "
                             "`labels` column (one label vector per row)")
        groups = kwargs.get("task")
        if groups is not None and len(groups) != len(texts):
            groups = None
        return self.batch_fn(texts, truths, list(groups) if groups is not None else None, lengths)
