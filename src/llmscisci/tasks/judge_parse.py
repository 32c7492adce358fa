"""Parse a judge's answer into per-candidate scores and a final label vector. Never raises.

Accepted forms, tried in order:
  * a JSON object anywhere in the text: {"llm_1": 4, "llm_2": "5/5", ..., "final": {...}}, also with
    "scores": [4, 5, 3] or {"LLM 1": 4, ...}, and "final" as {"code": true, ...}, a list of category
    names, a 0/1 vector, a string, or "LLM 2" / "correct classification";
  * free text: a score per candidate from lines like "LLM 1: 4", "LLM 2 - score 3/5", "Model 3 scores 4
    out of 5" (the last mention of a candidate wins, so a closing summary beats the working), and the
    final classification from the last line starting with "Final" (names, short names, a JSON list,
    "LLM 2", or "the correct classification").
Scores outside 0..n count as not parsed. The final vector goes through the one label validator
(the exclusive-`none` policy): a repair is recorded, not hidden.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from dataclasses import dataclass, field

from llmscisci.data.codebook import Codebook
from llmscisci.data.validate import apply_none_rule
from llmscisci.tasks.parse import parse_answer

MARKER = re.compile(r"\b(?:llm|model|candidate|output)[\s#_\-]*(\d+)\b", re.IGNORECASE)
FINAL = re.compile(r"^[\s*#>\-_]*(?:the\s+)?(?:best\s+)?final\b(?:[^:=\n]*[:=])?[ \t]*(.*)$",
                   re.IGNORECASE | re.MULTILINE)
TRUTH_WORDS = re.compile(r"\b(?:correct|ground[\s\-]*truth|reference)\b", re.IGNORECASE)
SCORE_PATTERNS = (
    re.compile(r"\bscore[sd]?\b\s*(?:of|is|=|:|-)?\s*(\d+)(?:\.0+)?\b(?:\s*(?:/|out\s+of)\s*\d+)?", re.IGNORECASE),
    re.compile(r"\b(\d+)(?:\.0+)?\s*(?:/|out\s+of)\s*(\d+)\b", re.IGNORECASE),
    re.compile(r"^\s*[\)\]\*]*\s*(?::|=|-|–|—|\bgets\b|\bscores?\b)?\s*\**\s*(\d+)(?:\.0+)?\b(?![.,]\d|\s*%)",
               re.IGNORECASE),
)
MAX_CHARS = 20_000  # longer answers are read up to this many characters
FINAL_KEYS = ("final", "final_labels", "final_classification", "final_label", "best", "classification", "labels")


@dataclass
class JudgeParse:
    scores: list[int | None]  # per position 1..k
    final: tuple[int, ...] | None
    final_repaired: bool = False
    final_source: str | None = None  # json | names | vector | llm:<pos> | truth
    form: str | None = None  # json | text
    problems: list[str] = field(default_factory=list)

    @property
    def scores_valid(self) -> bool:
        return bool(self.scores) and all(s is not None for s in self.scores)

    @property
    def final_valid(self) -> bool:
        return self.final is not None

    @property
    def valid(self) -> bool:
        return self.scores_valid and self.final_valid


def _as_score(value, n: int) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, (int, float)):
        v = float(value)
    elif isinstance(value, str):
        m = re.match(r"\s*(\d+(?:\.\d+)?)", value)
        if not m:
            return None
        v = float(m.group(1))
    else:
        return None
    if not v.is_integer() or not 0 <= v <= n:
        return None
    return int(v)


def _mentions_category(text: str, codebook: Codebook) -> bool:
    """Whether a category's short or display name occurs in the text."""
    alts = {a for c in codebook.categories for a in (c.short, c.short.replace("_", " "), c.name)}
    body = "|".join(re.escape(a) for a in sorted(alts, key=len, reverse=True))
    return re.search(rf"(?<![A-Za-z])(?:{body})(?![A-Za-z])", text, re.IGNORECASE) is not None


def _final_from_text(text: str, codebook: Codebook, candidates: Sequence, truth) -> tuple[tuple | None, bool, str | None]:
    """(vector, repaired, source) of a final classification written as text (or JSON text)."""
    text = text.strip()
    if not text:
        return None, False, None
    if not _mentions_category(text, codebook):  # a reference instead of categories: "LLM 2", "the correct classification"
        ref = MARKER.search(text)
        if ref:
            pos = int(ref.group(1))
            if 1 <= pos <= len(candidates) and candidates[pos - 1] is not None:
                return tuple(candidates[pos - 1]), False, f"llm:{pos}"
            return None, False, None
        if truth is not None and TRUTH_WORDS.search(text):
            return tuple(truth), False, "truth"
    parsed = parse_answer(text, codebook)
    if not parsed.valid:
        return None, False, None
    return parsed.labels, parsed.repaired, parsed.method


def _final_from_value(value, codebook: Codebook, candidates: Sequence, truth) -> tuple[tuple | None, bool, str | None]:
    """A final classification given as a JSON value: object of booleans, list of names or of 0/1, string."""
    if isinstance(value, str):
        return _final_from_text(value, codebook, candidates, truth)
    if not isinstance(value, (dict, list)) or not value:
        return None, False, None
    parsed = parse_answer(json.dumps(value), codebook)
    if not parsed.valid:
        return None, False, None
    return parsed.labels, parsed.repaired, "json"


def _first_json_object(text: str):
    dec = json.JSONDecoder()
    for m in re.finditer(r"\{", text):
        try:
            obj, _ = dec.raw_decode(text[m.start():])
        except json.JSONDecodeError:
            continue
        if isinstance(obj, dict):
            return obj
    return None


def _scores_from_json(obj: dict, k: int, n: int) -> list[int | None] | None:
    scores: list[int | None] = [None] * k
    found = False
    raw = obj.get("scores")
    if isinstance(raw, list):
        for i, v in enumerate(raw[:k]):
            scores[i] = _as_score(v, n)
            found = True
    elif isinstance(raw, dict):
        obj = {**obj, **raw}
    for key, v in obj.items():
        m = re.fullmatch(r"\s*(?:llm|model|candidate|output)?[\s#_\-]*(\d+)(?:[\s_\-]*score)?\s*", str(key),
                         re.IGNORECASE)
        if m and 1 <= int(m.group(1)) <= k:
            if isinstance(v, dict):
                v = next((v[x] for x in v if str(x).lower() in ("score", "points", "value")), None)
            scores[int(m.group(1)) - 1] = _as_score(v, n)
            found = True
    return scores if found else None


def _scores_from_text(text: str, k: int, n: int) -> list[int | None]:
    scores: list[int | None] = [None] * k
    stops = [m.start() for m in FINAL.finditer(text)]
    marks = list(MARKER.finditer(text))
    for j, m in enumerate(marks):
        pos = int(m.group(1))
        if not 1 <= pos <= k:
            continue
        end = marks[j + 1].start() if j + 1 < len(marks) else len(text)
        end = min([end] + [s for s in stops if s > m.end()])
        segment = text[m.end():end]
        line_end = segment.find("\n", 1)
        for pat in SCORE_PATTERNS:
            hit = pat.search(segment)
            if hit and pat is SCORE_PATTERNS[1] and int(hit.group(2)) != n:
                hit = None
            if hit:
                # a number opening the segment only counts on the marker's own line
                if pat is SCORE_PATTERNS[2] and line_end != -1 and hit.start(1) > line_end:
                    continue
                value = _as_score(hit.group(1), n)
                if value is not None:
                    scores[pos - 1] = value
                break
    return scores


def parse_judge(text: str, k: int, codebook: Codebook, candidates: Sequence[Sequence[int] | None] = (),
                truth: Sequence[int] | None = None) -> JudgeParse:
    """Scores of the k candidates (by position) and the final label vector from a judge's answer.

    `candidates` (label vectors by position) and `truth` resolve a final classification given as a
    reference ("LLM 2", "the correct classification"). Never raises: anything unforeseen is invalid."""
    try:
        return _parse(text if isinstance(text, str) else "", k, codebook, candidates, truth)
    except Exception as exc:  # noqa: BLE001 - the contract is "never raises"
        return JudgeParse([None] * k, None, problems=[f"unreadable answer ({type(exc).__name__})"])


def _parse(text: str, k: int, codebook: Codebook, candidates: Sequence, truth) -> JudgeParse:
    n = codebook.n
    text = text[:MAX_CHARS]
    out = JudgeParse(scores=[None] * k, final=None)
    final_vec, repaired, src = None, False, None
    obj = _first_json_object(text)
    if obj is not None:
        scores = _scores_from_json(obj, k, n)
        if scores is not None:
            out.scores, out.form = scores, "json"
        lowered = {str(key).strip().lower().replace(" ", "_"): v for key, v in obj.items()}
        for key in FINAL_KEYS:
            if key in lowered:
                final_vec, repaired, src = _final_from_value(lowered[key], codebook, candidates, truth)
                if final_vec is not None:
                    out.form = out.form or "json"
                    break
    if not any(s is not None for s in out.scores):
        scores = _scores_from_text(text, k, n)
        if any(s is not None for s in scores):
            out.scores, out.form = scores, "text"
    if final_vec is None:
        for m in reversed(list(FINAL.finditer(text))):
            body = m.group(1).strip()
            if not body:  # "Final classification:" followed by the answer on the next line
                rest = text[m.end():].lstrip("\n")
                body = rest.split("\n", 1)[0] if rest else ""
            final_vec, repaired, src = _final_from_text(body, codebook, candidates, truth)
            if final_vec is not None:
                out.form = out.form or "text"
                break
    if final_vec is not None:
        checked = apply_none_rule(final_vec, codebook.none_index)  # references are valid vectors already
        out.final, out.final_source = checked.labels, src
        out.final_repaired = repaired or checked.repaired
    missing = [i + 1 for i, s in enumerate(out.scores) if s is None]
    if missing:
        out.problems.append(f"no score (0..{n}) for LLM {', '.join(map(str, missing))}")
    if out.final is None:
        out.problems.append("no final classification")
    return out
