"""Do a run's labels depend on the text? Pure summaries of its answers, and the warnings they call for.

`AnswerDiagnostics` reads prediction records one at a time (so a streamed corpus run needs no more
memory than its distinct answers) and gives `diagnostics`:

* `distinct_answers`: how many different label vectors the valid answers hold;
* `top_answer_share`: the share of valid answers equal to the most frequent vector (`top_answer`);
* `example_copy_rate`: the share of the model's raw answers that equal a complete answer shown in the
  prompt (a k-shot answer, a format example), compared as JSON where both parse, else with white space
  collapsed; 0 when the prompt shows none.

Texts labelled by the empty-text rule (no model call) and failed calls are not answers and are left out.
`placebo_summary` summarises the placebo check (the same items asked again with the text replaced by
an unrelated passage); `warnings` turns all three into plain sentences.
"""

from __future__ import annotations

import json
import re
from collections import Counter
from collections.abc import Iterable, Sequence

from llmscisci.records import LabelPrediction, is_valid

TOP_SHARE_WARN = 0.9  # one label vector for at least this share of the valid answers ...
TOP_SHARE_MIN_ITEMS = 10  # ... among at least this many
COPY_WARN = 0.5  # at least this share of the answers equal an example of the prompt
PLACEBO_WARN = 0.9  # at least this share of the answers unchanged when the text is replaced ...
PLACEBO_MIN_ITEMS = 5  # ... among at least this many re-asked items

_JSON_SNIPPET = re.compile(r"\{[^{}]*\}|\[[^\[\]]*\]")


def normalize_answer(text: str) -> str:
    """An answer's comparable form: its JSON value re-serialised (key order and spacing ignored), else
    its text with white space collapsed."""
    text = (text or "").strip()
    try:
        return json.dumps(json.loads(text), sort_keys=True, separators=(",", ":"))
    except (ValueError, TypeError):
        return " ".join(text.split())


def examples_in(text: str) -> list[str]:
    """The JSON lists and objects written in a prompt's text (the form examples took in prompts made
    before prompts stopped showing them; used for the diagnostics of such older runs)."""
    out = []
    for m in _JSON_SNIPPET.finditer(text or ""):
        try:
            value = json.loads(m.group(0))
        except ValueError:
            continue
        if value:
            out.append(m.group(0))
    return out


def prompt_examples(config: dict) -> list[str]:
    """The complete answers a run's prompt showed: recorded in config.json, or, for a run made before
    they were recorded, the JSON examples of its system prompt and its k-shot answers."""
    if isinstance(config.get("prompt_examples"), list):
        return [str(e) for e in config["prompt_examples"]]
    shots = [str(s[1]) for s in config.get("shot_examples") or [] if isinstance(s, (list, tuple)) and len(s) == 2]
    return examples_in(config.get("system_prompt") or "") + shots


class AnswerDiagnostics:
    """Accumulates the answers of one run; `as_dict()` is its `diagnostics` object."""

    def __init__(self, examples: Iterable[str] = (), shorts: Sequence[str] = ()):
        self.examples = {normalize_answer(e) for e in examples if (e or "").strip()}
        self.shorts = list(shorts)
        self.vectors: Counter = Counter()
        self.n_answers = 0
        self.copies = 0

    def add(self, rec: LabelPrediction | dict) -> None:
        """Count one prediction (a `LabelPrediction`; a dict as read is validated into one)."""
        if isinstance(rec, dict):
            rec = LabelPrediction.read(rec)
        if rec.empty or rec.error:
            return
        self.n_answers += 1
        if self.examples and normalize_answer(rec.raw or "") in self.examples:
            self.copies += 1
        labels = rec.labels
        if labels is not None and is_valid(rec):
            self.vectors[tuple(int(v) for v in labels)] += 1

    def as_dict(self) -> dict:
        n_valid = sum(self.vectors.values())
        top, count = self.vectors.most_common(1)[0] if self.vectors else (None, 0)
        return {
            "n_answers": self.n_answers,
            "n_valid": n_valid,
            "distinct_answers": len(self.vectors),
            "top_answer": list(top) if top is not None else None,
            "top_answer_categories": ([s for s, v in zip(self.shorts, top) if v] if top is not None and self.shorts
                                      else None),
            "top_answer_share": round(count / n_valid, 4) if n_valid else None,
            "examples_shown": len(self.examples),
            "example_copy_rate": round(self.copies / self.n_answers, 4) if self.n_answers and self.examples else 0.0,
        }


def diagnostics(records: Iterable[LabelPrediction | dict], examples: Iterable[str] = (), shorts: Sequence[str] = ()) -> dict:
    """The `diagnostics` object of a run's prediction records."""
    acc = AnswerDiagnostics(examples, shorts)
    for rec in records:
        acc.add(rec)
    return acc.as_dict()


def placebo_summary(records: Sequence[dict]) -> dict | None:
    """The `placebo` object from placebo.jsonl's records: how many items were asked again with the
    text replaced, and the share whose label vector stayed the same."""
    if not records:
        return None
    unchanged = sum(bool(r.get("unchanged")) for r in records)
    first = records[0]
    return {"n": len(records), "unchanged": unchanged, "unchanged_share": round(unchanged / len(records), 4),
            "kind": first.get("kind"), "passage": first.get("passage"), "seed": first.get("seed"),
            "invalid": sum(1 for r in records if not is_valid(r))}


def _categories(diag: dict) -> str:
    cats = diag.get("top_answer_categories")
    if cats is not None:
        return "{" + ", ".join(cats) + "}" if cats else "{} (no category)"
    return str(diag.get("top_answer"))


def warnings(diag: dict | None, placebo: dict | None = None) -> list[str]:
    """Plain sentences for each sign that the labels do not depend on the text."""
    out = []
    diag = diag or {}
    share, n_valid = diag.get("top_answer_share"), diag.get("n_valid") or 0
    if share is not None and share >= TOP_SHARE_WARN and n_valid >= TOP_SHARE_MIN_ITEMS:
        out.append(f"{share:.0%} of the {n_valid} valid answers are the same label vector {_categories(diag)}: "
                   "the labels do not depend on the text, and the scores measure that one answer, not the model's "
                   "reading.")
    copy = diag.get("example_copy_rate") or 0.0
    if copy >= COPY_WARN:
        out.append(f"{copy:.0%} of the answers are, character for character, an example shown in the prompt: the "
                   "model copies the prompt instead of labelling the text.")
    if placebo and placebo.get("n", 0) >= PLACEBO_MIN_ITEMS and placebo.get("unchanged_share", 0) >= PLACEBO_WARN:
        out.append(f"placebo check: {placebo['unchanged_share']:.0%} of {placebo['n']} answers stay the same when "
                   "the text is replaced by an unrelated passage: the model does not read the text.")
    return out


def summary_lines(metrics: dict) -> list[str]:
    """The diagnostics, placebo and warnings of a metrics dict as lines for a terminal summary."""
    diag = metrics.get("diagnostics")
    lines = []
    if diag:
        share = diag.get("top_answer_share")
        k = diag.get("distinct_answers", 0)
        lines.append(f"diagnostics: {k} distinct label vector{'' if k == 1 else 's'} among "
                     f"{diag.get('n_valid', 0)} valid answers; most frequent {_categories(diag)} "
                     f"{'–' if share is None else f'{share:.0%}'}; example copies "
                     f"{diag.get('example_copy_rate', 0):.0%} ({diag.get('examples_shown', 0)} examples shown)")
    pl = metrics.get("placebo")
    if pl:
        lines.append(f"placebo ({pl.get('kind')} passage): {pl['unchanged_share']:.0%} of {pl['n']} answers "
                     "unchanged")
    lines += [f"WARNING: {w}" for w in metrics.get("warnings") or []]
    return lines
