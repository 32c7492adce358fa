"""The one label-vector validator, used by the parser, the evaluator, the trainers and the rewards.

A label vector has one 0/1 entry per category. `none` is exclusive. Policy (applied, and counted
as *repaired*, separately from unparseable output):
  * all-zero            -> `none`
  * `none` with others  -> the others (`none` dropped)
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass


class LabelError(ValueError):
    """A vector of the wrong length or with entries other than 0/1."""


@dataclass(frozen=True)
class Checked:
    labels: tuple[int, ...]
    repaired: bool


def check_shape(vector: Sequence, n: int) -> tuple[int, ...]:
    """Strict shape check: exactly n entries, each 0 or 1 (bools and 0.0/1.0 floats accepted)."""
    if isinstance(vector, (str, bytes)) or not isinstance(vector, Sequence):
        raise LabelError(f"expected a list of {n} 0/1 values, got {type(vector).__name__}")
    if len(vector) != n:
        raise LabelError(f"expected {n} entries, got {len(vector)}")
    out = []
    for v in vector:
        if isinstance(v, bool) or v in (0, 1):
            out.append(int(v))
        else:
            raise LabelError(f"entries must be 0 or 1, got {v!r}")
    return tuple(out)


def apply_none_rule(labels: Sequence[int], none_index: int | None) -> Checked:
    """Apply the exclusive-`none` policy to a 0/1 vector; report whether it changed anything."""
    vec = list(labels)
    if none_index is None:
        return Checked(tuple(vec), False)
    others = [v for i, v in enumerate(vec) if i != none_index]
    if not any(vec):
        vec[none_index] = 1
        return Checked(tuple(vec), True)
    if vec[none_index] and any(others):
        vec[none_index] = 0
        return Checked(tuple(vec), True)
    return Checked(tuple(vec), False)


def validate(vector: Sequence, n: int, none_index: int | None) -> Checked:
    """Shape check then the `none` policy. Raises LabelError for a wrong shape."""
    return apply_none_rule(check_shape(vector, n), none_index)


def is_valid(labels: Sequence[int], none_index: int | None) -> bool:
    """True when a 0/1 vector already satisfies the `none` rule (no repair needed)."""
    return not apply_none_rule(labels, none_index).repaired
