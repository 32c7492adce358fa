"""Free-text model answers -> label vectors. Pure functions; `parse_answer` never raises.

What a model may answer, and how it is read (first rule that yields categories wins):
  1. `<think>...</think>` blocks are dropped; `<label>...</label>` (or `<labels>`, `<answer>`) tags and
     markdown code fences are read first when present.
  2. JSON (the whole answer, or the first JSON value embedded in chatter):
       * a list of 1-based category numbers `[1, 3]`;
       * a one-hot list `[1, 0, 1, 0, 0]` (exactly n entries, all 0/1: read as a vector, not as numbers);
       * a list of names or numbered names `["1. Availability of Code", "readability"]`;
       * an object keyed by short name, display name or number with booleans / "Yes"/"No"
         (`{"code": true, ...}`, `{"Availability of code": "Yes", ...}`), or wrapping a list
         (`{"labels": [1, 3]}`).
  3. Category names before a colon ("Readability of full text: \"quote ...\""): the words after the
     colon are evidence, not labels, so quoted text that mentions "code" does not count.
  4. Bare numbers ("1, 3", "Categories 2 and 4").
  5. Category names, short names and codebook keywords anywhere in the answer (quotes removed).
Matching is by the codebook: display name, short name and the optional `keywords` of each category;
longer phrases win over shorter ones inside them ("Unclear notation or documentation in the codebase"
is `documentation`, not `math` for "notation").

After extraction the project's validator applies (shape check, then the exclusive-`none` policy):
all-zero -> `none`, `none` with others -> the others; `repaired` records that the policy changed the
vector. Anything unreadable gives `labels=None, valid=False`.

`is_exact_format` and `render_answer` define the canonical answer of each prompt variant:
`icl`/`guidelines` a JSON list of 1-based category numbers (`[5]` for none), `structured` a JSON object
with one boolean per category keyed by short name, in codebook order.
"""

from __future__ import annotations

import json
import re
from bisect import bisect_right
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache

from llmscisci.data.codebook import Codebook
from llmscisci.data.validate import apply_none_rule, check_shape

MAX_CHARS = 20_000  # longer answers are read up to this many characters
MAX_JSON_CANDIDATES = 40
NUMBER_VARIANTS = ("icl", "guidelines")
OBJECT_VARIANTS = ("structured",)
VARIANTS = NUMBER_VARIANTS + OBJECT_VARIANTS + ("cot",)  # cot: the GRPO think/label format


@dataclass(frozen=True)
class Parsed:
    labels: tuple[int, ...] | None
    valid: bool
    repaired: bool
    method: str


INVALID = Parsed(None, False, False, "unparseable")

_YES = frozenset({"yes", "y", "true", "t", "1", "present", "applies", "applicable", "x", "✓", "✔"})
_NO = frozenset({"no", "n", "false", "f", "0", "absent", "not present", "not applicable", "n/a", "na", "-",
                 ""})
_WRAPPER_KEYS = ("labels", "label", "categories", "category", "answer", "classes", "class", "prediction",
                 "predictions", "output", "result", "selected", "selected_categories")
_NONWORD = re.compile(r"[\W_]+")
_KEY_NUMBER = re.compile(r"(?:category|class|label)?\s*(\d+)(?:\s+(.*))?")
_ITEM_NUMBER = re.compile(r"\s*+(?:category|class|label)?+\s*+#?+\s*+(\d++)\s*+[.):\-]?+\s*+(.*)",
                          re.I | re.S)
_OPENERS = re.compile(r"[\[{]")
_COLON = re.compile(r":(?=\s|$)")
_QUOTE_CHAR = re.compile(r"[\"“”‘’]|(?<![\w])'")
_CATEGORY_NUMBERS = re.compile(r"\b(?:categor(?:y|ies)|class(?:es)?|labels?)\s*+(?:#|nos?\.?|numbers?)?+"
                               r"\s*+[:=]?+\s*+(\d++(?:(?:\s|,|&|/|and|or)++\d++)*+)")
_HEAD_VALUE = re.compile(r"\s*+[*_`]*+\s*+(yes|no|true|false|present|absent|[01])"
                         r"[ \t]*+[*_`]*+[ \t]*+(?:$|[,.;\r\n(])", re.I)
_TOKEN = re.compile(r"[a-z]+|\d+|\S")
_BOUNDARY = re.compile(r"(?:^|\n|[.;!?][\"'”’)\]]*\s+)")
_QUOTED = re.compile(r"\"[^\"]*\"|“[^”]*”|(?<![\w'])'[^'\n]*?'(?![\w'])")


class _Fail(Exception):
    """Internal: this reading does not apply."""


# ----------------------------------------------------------------------------- vocabulary


def _norm(s: str) -> str:
    """Lower-case, non-alphanumerics to single spaces."""
    return " ".join(_NONWORD.sub(" ", s.lower()).split())


@dataclass(frozen=True)
class _Vocab:
    n: int
    none_index: int | None
    exact: dict  # normalised display name / short name -> index
    phrases: dict  # normalised phrase (name, short, keyword) -> index
    pattern: re.Pattern | None


def _codebook_key(cb: Codebook) -> tuple:
    cats = tuple((c.short, c.name, tuple(getattr(c, "keywords", None) or ())) for c in cb.categories)
    return (cb.none_index, cats)


@lru_cache(maxsize=64)
def _vocab_from_key(key: tuple) -> _Vocab:
    none_index, cats = key
    exact: dict[str, int] = {}
    phrases: dict[str, int] = {}
    for i, (short, name, keywords) in enumerate(cats):
        for p in (name, short, short.replace("_", " ")):
            exact.setdefault(_norm(p), i)
        for p in (name, short, short.replace("_", " "), *keywords):
            q = _norm(p)
            if q:
                phrases.setdefault(q, i)
    exact.pop("", None)
    alts = sorted(phrases, key=lambda p: (-len(p), p))
    pattern = None
    if alts:
        body = "|".join(re.escape(p).replace(r"\ ", " ") for p in alts)
        pattern = re.compile(rf"(?<![a-z0-9])(?:{body})(?:s|es)?(?![a-z0-9])")
    return _Vocab(len(cats), none_index, exact, phrases, pattern)


def _vocab(cb: Codebook) -> _Vocab:
    return _vocab_from_key(_codebook_key(cb))


def _phrase_hits(text: str, vocab: _Vocab) -> set[int]:
    """Categories whose phrases occur in `text` (longest phrase wins where phrases overlap)."""
    if vocab.pattern is None:
        return set()
    out = set()
    for m in vocab.pattern.finditer(_norm(text)):
        w = m.group(0)
        for cand in (w, w[:-1], w[:-2]):
            if cand in vocab.phrases:
                out.add(vocab.phrases[cand])
                break
    return out


# ----------------------------------------------------------------------------- JSON readings


def _truth(v) -> bool | None:
    if isinstance(v, bool):
        return v
    if isinstance(v, (int, float)) and v in (0, 1):
        return bool(v)
    if isinstance(v, str):
        s = v.strip().strip(".!").lower()
        if s in _YES:
            return True
        if s in _NO:
            return False
        first = s.split()[0] if s.split() else ""
        if first.strip(",.;:") in ("yes", "true"):
            return True
        if first.strip(",.;:") in ("no", "false", "not", "none", "never"):
            return False
    return None


def _number(v, vocab: _Vocab) -> int:
    """1-based category number -> index; anything else fails."""
    if isinstance(v, bool):
        raise _Fail
    if isinstance(v, float):
        if not v.is_integer():
            raise _Fail
        v = int(v)
    if isinstance(v, int) and 1 <= v <= vocab.n:
        return v - 1
    raise _Fail


def _key_index(key: str, vocab: _Vocab) -> int | None:
    k = _norm(key)
    if k in vocab.exact:
        return vocab.exact[k]
    m = _KEY_NUMBER.fullmatch(k)
    if m:
        rest = m.group(2) or ""
        if rest in vocab.exact:
            return vocab.exact[rest]
        num = int(m.group(1))
        return num - 1 if 1 <= num <= vocab.n else None
    if k in vocab.phrases:
        return vocab.phrases[k]
    hits = _phrase_hits(k, vocab)
    return hits.pop() if len(hits) == 1 else None


def _string_item(s: str, vocab: _Vocab) -> set[int]:
    """One list element given as text: "3", "1. Availability of Code", "readability"."""
    t = s.strip()
    m = _ITEM_NUMBER.fullmatch(t)
    num, rest = (int(m.group(1)), m.group(2)) if m else (None, t)
    r = _norm(rest)
    if r in vocab.exact:
        return {vocab.exact[r]}
    if num is not None and 1 <= num <= vocab.n:
        return {num - 1}
    if num is not None and not r:
        raise _Fail
    hits = _phrase_hits(rest, vocab)
    if not hits:
        raise _Fail
    return hits


def _from_list(items: list, vocab: _Vocab) -> tuple[list[int], str]:
    n = vocab.n
    if len(items) == n and all(isinstance(v, bool) or (isinstance(v, (int, float)) and v in (0, 1))
                               for v in items):
        return [int(v) for v in items], "json-onehot"
    if len(items) == n and all(isinstance(v, str) and _truth(v) is not None for v in items):
        return [int(bool(_truth(v))) for v in items], "json-onehot"
    vec = [0] * n
    kinds = set()
    for v in items:
        if isinstance(v, (int, float)) and not isinstance(v, bool):
            vec[_number(v, vocab)] = 1
            kinds.add("numbers")
        elif isinstance(v, str):
            for i in _string_item(v, vocab):
                vec[i] = 1
            kinds.add("names")
        elif isinstance(v, dict):
            sub, _ = _from_object(v, vocab)
            vec = [a | b for a, b in zip(vec, sub)]
            kinds.add("objects")
        else:
            raise _Fail
    method = "json-numbers" if kinds <= {"numbers"} else "json-names" if kinds == {"names"} else "json-list"
    return vec, method


def _from_object(obj: dict, vocab: _Vocab) -> tuple[list[int], str]:
    vec = [0] * vocab.n
    mapped = 0
    for key, value in obj.items():
        idx = _key_index(str(key), vocab)
        if idx is None:
            continue
        t = _truth(value)
        if t is None:
            if isinstance(value, str) and value.strip():
                t = True  # {"Availability of code": "the authors released it"} names the category
            else:
                continue
        mapped += 1
        if t:
            vec[idx] = 1
    if mapped:
        return vec, "json-object"
    for key in _WRAPPER_KEYS:
        for k, value in obj.items():
            if str(k).strip().lower() == key:
                return _from_value(value, vocab)
    raise _Fail


def _from_value(value, vocab: _Vocab) -> tuple[list[int], str]:
    if isinstance(value, list):
        return _from_list(value, vocab)
    if isinstance(value, dict):
        return _from_object(value, vocab)
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        vec = [0] * vocab.n
        vec[_number(value, vocab)] = 1
        return vec, "json-numbers"
    if isinstance(value, str):
        hits = _string_item(value, vocab)
        return [int(i in hits) for i in range(vocab.n)], "json-names"
    raise _Fail


def _loads(s: str):
    try:
        return json.loads(s)
    except (ValueError, RecursionError):
        pass
    # Python-literal style: single quotes, True/False/None (no eval; a textual fix-up, then JSON)
    if "'" in s and '"' not in s or re.search(r"\b(True|False|None)\b", s):
        fixed = s.replace("'", '"') if '"' not in s else s
        fixed = re.sub(r"\bTrue\b", "true", re.sub(r"\bFalse\b", "false", re.sub(r"\bNone\b", "null", fixed)))
        try:
            return json.loads(fixed)
        except (ValueError, RecursionError):
            pass
    raise _Fail


def _balanced(text: str, start: int) -> str | None:
    """The bracketed span starting at `start` (quote-aware), or None when unbalanced."""
    pairs = {"[": "]", "{": "}"}
    stack = []
    quote = None
    i = start
    end = min(len(text), start + 4000)
    while i < end:
        ch = text[i]
        if quote:
            if ch == "\\":
                i += 2
                continue
            if ch == quote:
                quote = None
        elif ch in "\"'" and (ch == '"' or i == 0 or not text[i - 1].isalnum()):
            quote = ch
        elif ch in pairs:
            stack.append(pairs[ch])
        elif ch in "]}":
            if not stack or stack.pop() != ch:
                return None
            if not stack:
                return text[start:i + 1]
        i += 1
    return None


def _json_candidates(text: str):
    count = 0
    decoder = json.JSONDecoder()
    for m in _OPENERS.finditer(text):
        if count >= MAX_JSON_CANDIDATES:
            return
        count += 1
        try:
            value, _ = decoder.raw_decode(text, m.start())
            yield value
            continue
        except (ValueError, RecursionError):
            pass
        span = _balanced(text, m.start())
        if span is not None:
            try:
                yield _loads(span)
            except _Fail:
                pass


# ----------------------------------------------------------------------------- free-text readings


def _heads(text: str) -> list[tuple[str, str]]:
    """(phrase before a colon, what follows it) for each colon that ends a short quote-free phrase
    starting at a sentence boundary:
    `Readability of full text: "..."` -> ("Readability of full text", ' "...')."""
    out = []
    starts = [m.end() for m in _BOUNDARY.finditer(text)]
    for m in _COLON.finditer(text):
        p = m.start()
        k = bisect_right(starts, p)
        start = starts[k - 1] if k else 0
        head = text[start:p].strip().strip("*#-•> ").strip()
        if not head or len(head) > 120 or _QUOTE_CHAR.search(head):
            continue
        out.append((head, text[p + 1:p + 40]))
    return out


def _from_heads(text: str, vocab: _Vocab) -> list[int] | None:
    found: list[tuple[set[int], bool | None]] = []
    for head, after in _heads(text):
        hits = _phrase_hits(head, vocab)
        if not hits:
            continue
        m = _HEAD_VALUE.match(after)
        found.append((hits, None if m is None else _truth(m.group(1))))
    if not found:
        return None
    decided = any(t is not None for _, t in found)
    vec = [0] * vocab.n
    for hits, t in found:
        if t or (not decided):
            for i in hits:
                vec[i] = 1
    return vec


_FILLER = frozenset("""category categories class classes label labels answer answers final is are the and or
number numbers no nos cat cats num selected predicted prediction output result results apply applies
applicable""".split())


def _from_numbers(text: str, vocab: _Vocab) -> tuple[list[int], str] | None:
    low = text.lower()
    tokens = _TOKEN.findall(low)
    nums: list[int] | None = None
    if tokens and any(t.isdigit() for t in tokens) and all(
        t.isdigit() or t in _FILLER or (len(t) == 1 and t in ",.;:()[]{}#-+&/*`'\"") for t in tokens
    ):
        nums = [int(t) for t in tokens if t.isdigit()]
    else:
        m = _CATEGORY_NUMBERS.search(low)
        if m:
            nums = [int(t) for t in re.findall(r"\d+", m.group(1))]
    if not nums:
        return None
    if len(nums) == vocab.n and all(v in (0, 1) for v in nums):
        return list(nums), "onehot"
    if not all(1 <= v <= vocab.n for v in nums):
        return None
    return [int(i + 1 in nums) for i in range(vocab.n)], "numbers"


def _strip_wrappers(text: str) -> str:
    # reasoning models: only what follows the reasoning is the answer (the opening <think> may sit in
    # the prompt's template, so cut at the last closing tag)
    end = text.lower().rfind("</think>")
    if end >= 0:
        text = text[end + len("</think>"):]
    return text.strip()


def _extract(text: str, vocab: _Vocab, depth: int = 0) -> tuple[list[int], str] | None:
    stripped = text.strip()
    if not stripped:
        return None
    if depth == 0:
        lower = stripped.lower()
        for tag in ("label", "labels", "answer"):
            if f"</{tag}>" not in lower:
                continue
            for m in re.finditer(rf"<{tag}>(.*?)</{tag}>", stripped, flags=re.S | re.I):
                got = _extract(m.group(1), vocab, depth + 1)
                if got:
                    return got[0], "tag+" + got[1]
        for m in re.finditer(r"```[A-Za-z0-9_-]*\s*\n?(.*?)```", stripped, flags=re.S):
            got = _extract(m.group(1), vocab, depth + 1)
            if got:
                return got[0], "fence+" + got[1]
    # 2. JSON: whole answer, then embedded values
    try:
        return _from_value(_loads(stripped), vocab)
    except _Fail:
        pass
    for value in _json_candidates(stripped):
        if isinstance(value, (list, dict)):
            try:
                return _from_value(value, vocab)
            except _Fail:
                continue
    # 3. category names before a colon
    vec = _from_heads(stripped, vocab)
    if vec is not None:
        return vec, "names-heads"
    # 4. bare numbers
    got = _from_numbers(stripped, vocab)
    if got:
        return got
    # 5. names and keywords anywhere, quotes removed
    hits = _phrase_hits(_QUOTED.sub(" ", stripped), vocab)
    if hits:
        return [int(i in hits) for i in range(vocab.n)], "names"
    return None


def parse_answer(text: str, codebook: Codebook) -> Parsed:
    """Read a model's free-text answer into a validated label vector; never raises."""
    try:
        if not isinstance(text, str):
            return INVALID
        vocab = _vocab(codebook)
        got = _extract(_strip_wrappers(text[:MAX_CHARS]), vocab)
        if got is None:
            return INVALID
        vec, method = got
        checked = apply_none_rule(check_shape(vec, vocab.n), vocab.none_index)
        return Parsed(checked.labels, True, checked.repaired, method)
    except Exception:  # noqa: BLE001 - the contract is "never raises": anything unforeseen is invalid
        return INVALID


# ----------------------------------------------------------------------------- canonical format


def _check_variant(variant: str) -> None:
    if variant not in VARIANTS:
        raise ValueError(f"unknown prompt variant {variant!r} (known: {', '.join(VARIANTS)})")


def render_answer(labels: Sequence[int], codebook: Codebook, variant: str) -> str:
    """The canonical answer of a prompt variant for a label vector (the none policy applied first)."""
    _check_variant(variant)
    vec = apply_none_rule(check_shape(labels, codebook.n), codebook.none_index).labels
    if variant == "cot":
        return "<think>\n</think>\n<label>" + json.dumps(list(vec)) + "</label>"
    if variant in NUMBER_VARIANTS:
        return json.dumps([i + 1 for i, v in enumerate(vec) if v])
    return json.dumps({s: bool(v) for s, v in zip(codebook.shorts, vec)})


def _no_duplicate_keys(pairs):
    keys = [k for k, _ in pairs]
    if len(set(keys)) != len(keys):
        raise ValueError("duplicate key")
    return dict(pairs)


def is_exact_format(text: str, codebook: Codebook, variant: str) -> bool:
    """Whether the raw answer is exactly the variant's format (surrounding whitespace allowed), before
    any repair: `icl`/`guidelines` a non-empty JSON list of distinct 1-based category numbers;
    `structured` a JSON object with exactly one boolean per category, keyed by short name in codebook
    order. The format is syntactic: `[1, 5]` (none with another) is in format; the none policy is
    counted separately as a repair."""
    _check_variant(variant)
    if not isinstance(text, str):
        return False
    if variant == "cot":  # the GRPO format: <think>...</think><label>[one-hot]</label>
        from llmscisci.rewards import core as rewards

        return bool(rewards.format_reward(text) and rewards.label_reward(text, codebook.n))
    try:
        value = json.loads(text.strip(), object_pairs_hook=_no_duplicate_keys)
    except (ValueError, RecursionError):
        return False
    if variant in NUMBER_VARIANTS:
        if not isinstance(value, list) or (not value and codebook.none_index is not None):
            return False
        if not all(type(v) is int and 1 <= v <= codebook.n for v in value):
            return False
        return len(set(value)) == len(value)
    return (isinstance(value, dict) and list(value) == codebook.shorts
            and all(isinstance(v, bool) for v in value.values()))


__all__ = ["INVALID", "Parsed", "VARIANTS", "is_exact_format", "parse_answer", "render_answer"]
