"""Find a report's "Scope of reproducibility", "What was easy" and "What was difficult" parts.

Each part appears in a short form (the reproducibility summary at the top, or an abstract) and
often again in a long form (a discussion subsection). Headings are `\\section` ... `\\subparagraph`
(starred or not) and bold lead-ins (`\\textbf{What was easy:} ...`) at the start of a paragraph.
A heading's text runs to the next heading of the same or a higher level, the next heading of
another known part, or the end of the environment it sits in. A merged "What was easy and
difficult" part is reported, and split only at explicit "Easy:"/"Difficult:" labels.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from llmscisci.data.ingest import log as L
from llmscisci.data.ingest.latex import match_brace, to_text

LEVELS = {
    "part": -1,
    "chapter": 0,
    "section": 1,
    "subsection": 2,
    "subsubsection": 3,
    "paragraph": 4,
    "subparagraph": 5,
}
LEAD_IN_LEVEL = 6

EASY, DIFFICULT, MERGED, SCOPE, SUMMARY = "easy", "difficult", "merged", "scope", "summary"
OTHER_PARTS = ("methodology", "results", "communication")
TARGETS = (EASY, DIFFICULT, MERGED, SCOPE)
SUMMARY_PARTS = TARGETS + OTHER_PARTS
FIELDS = ("easy", "difficult", "easy_long", "difficult_long", "scope")

_HEADING = re.compile(
    r"\\(part|chapter|section|subsection|subsubsection|paragraph|subparagraph)(?![A-Za-z])\s*(\*)?\s*"
    r"(?:\[[^\]]*\]\s*)?\{"
)
_LEAD_IN = re.compile(
    r"\\(textbf|textit|emph|underline|textsc)\s*\{|\{\s*\\(bf|bfseries|it|itshape|em)(?![A-Za-z])"
)
_BEGIN_END = re.compile(r"\\(begin|end)\s*\{([^}]*)\}")
_STOP = re.compile(
    r"\\appendix(?![A-Za-z])|\\printbibliography|\\bibliography\s*\{|\\begin\s*\{thebibliography\}"
)
_LAYOUT = re.compile(
    r"\\(noindent|par|medskip|smallskip|bigskip|newline|item|centering)(?![A-Za-z])"
    r"|\\vspace\*?\s*\{[^}]*\}|\\\\|\\label\s*\{[^}]*\}"
)

_EASY_W = r"(eas(y|ier|iest)|straightforward|simple)"
_DIFF_W = r"(difficult(y|ies)?|hard(er|est)?|challenging)"
_WHAT = r"(what (was|were|is|are|has been|went) (it )?(the )?)"


def normalise_title(title: str) -> str:
    t = title.lower().replace("’", "'")
    t = re.sub(r"[^a-z0-9']+", " ", t)
    return " ".join(t.split())


def classify(title: str) -> str:
    """Kind of a heading from its plain-text title: easy, difficult, merged, scope, summary,
    methodology, results, communication or other."""
    t = normalise_title(title)
    if not t:
        return "other"
    if re.fullmatch(
        r"(the )?((reproducibility|reproduction|replication|report) )?(report )?summary|abstract", t
    ):
        return SUMMARY
    words = len(t.split())
    has_easy = re.search(rf"\b{_EASY_W}\b", t) is not None
    has_diff = re.search(rf"\b{_DIFF_W}\b", t) is not None
    if has_easy and has_diff and re.match(rf"{_WHAT}?{_EASY_W}\b|{_WHAT}?{_DIFF_W}\b", t) and words <= 12:
        return MERGED
    if has_easy and re.match(rf"{_WHAT}?{_EASY_W}\b", t) and words <= 7:
        return EASY
    if has_diff and re.match(rf"{_WHAT}?{_DIFF_W}\b", t) and words <= 7:
        return DIFFICULT
    if re.fullmatch(
        r"(the )?scope( of (the )?(reproducibility|reproduction|replication|this (study|report|work)|"
        r"the (study|report|work)|study|work))?|reproducibility scope",
        t,
    ):
        return SCOPE
    if re.fullmatch(r"methodology|methods?|approach", t):
        return "methodology"
    if re.fullmatch(r"results?", t):
        return "results"
    if re.match(r"communication with (the )?(original )?authors?", t):
        return "communication"
    return "other"


@dataclass
class Heading:
    kind: str
    title: str
    command: str  # "subsection*", "paragraph", "textbf", ...
    level: int
    start: int
    body_start: int
    end: int = -1

    @property
    def lead_in(self) -> bool:
        return self.level == LEAD_IN_LEVEL

    def describe(self) -> str:
        if self.lead_in:
            return f"\\{self.command}{{{self.title}}} lead-in"
        return f"\\{self.command}{{{self.title}}}"


def _title_text(raw: str, macros) -> str:
    return to_text(raw, macros, comments_stripped=True).text.strip().rstrip(":.").strip()


def _paragraph_start(src: str, pos: int) -> bool:
    """A lead-in opens a paragraph: only layout commands stand between it and a blank line, the start
    of the text or an environment, an \\item or a sectioning command."""
    seg = re.split(r"\n[ \t]*\n", src[max(0, pos - 400) : pos])[-1]
    rest = _LAYOUT.sub("", seg).strip()
    return (
        not rest
        or re.search(
            r"(\\begin\s*\{[^}]*\}|\\(part|chapter|(sub)*section|(sub)?paragraph)\*?\s*\{[^{}]*\})$", rest
        )
        is not None
    )


def find_headings(src: str, macros: dict[str, str] | None = None) -> list[Heading]:
    """Sectioning commands and known-part bold lead-ins, in document order, with their extent."""
    found: list[Heading] = []
    for m in _HEADING.finditer(src):
        close = match_brace(src, m.end() - 1)
        title = _title_text(src[m.end() : close - 1], macros)
        cmd = m.group(1) + ("*" if m.group(2) else "")
        found.append(Heading(classify(title), title, cmd, LEVELS[m.group(1)], m.start(), close))
    for m in _LEAD_IN.finditer(src):
        if m.group(1):
            close = match_brace(src, m.end() - 1)
            inner = src[m.end() : close - 1]
            cmd = m.group(1)
        else:
            close = match_brace(src, m.start())
            inner = src[m.end() : close - 1]
            cmd = m.group(2)
        title = _title_text(inner, macros)
        kind = classify(title)
        if kind not in SUMMARY_PARTS + (SUMMARY,) or not _paragraph_start(src, m.start()):
            continue
        found.append(Heading(kind, title, cmd, LEAD_IN_LEVEL, m.start(), close))
    found.sort(key=lambda h: h.start)
    for i, h in enumerate(found):
        h.end = _extent_end(src, h, found[i + 1 :])
    return found


def _env_end(src: str, start: int) -> int:
    depth = 0
    for m in _BEGIN_END.finditer(src, start):
        if m.group(1) == "begin":
            depth += 1
        elif depth == 0:
            return m.start()
        else:
            depth -= 1
    return len(src)


def _extent_end(src: str, h: Heading, after: list[Heading]) -> int:
    end = len(src)
    for o in after:
        if o.level <= h.level:
            end = o.start
            break
        if h.kind != MERGED and h.kind in TARGETS and o.kind in TARGETS + ("communication",):
            end = o.start
            break
    stop = _STOP.search(src, h.body_start, end)
    if stop:
        end = stop.start()
    return min(end, _env_end(src, h.body_start))


def summary_regions(src: str, headings: list[Heading]) -> tuple[list[tuple[int, int]], bool]:
    """Spans of the short form: "Reproducibility Summary" headings (with the summary parts that follow
    them as siblings) and abstract environments. Without either, the text before the first
    numbered top-level section that is not a summary part (implicit: True)."""
    regions = []
    for i, h in enumerate(headings):
        if h.kind != SUMMARY:
            continue
        end = _env_end(src, h.body_start)
        for o in headings[i + 1 :]:
            if o.level <= h.level and o.kind not in SUMMARY_PARTS:
                end = min(end, o.start)
                break
        regions.append((h.start, end))
    for m in re.finditer(r"\\begin\s*\{abstract\}", src):
        end = src.find("\\end{abstract}", m.end())
        regions.append((m.start(), end if end != -1 else len(src)))
    if regions:
        return regions, False
    doc = re.search(r"\\begin\s*\{document\}", src)
    start = doc.end() if doc else 0
    end = len(src)
    for h in headings:
        if h.start >= start and h.level <= 1 and h.kind not in SUMMARY_PARTS:
            end = h.start
            break
    return [(start, end)], True


@dataclass
class Part:
    text: str
    heading: Heading
    form: str  # short | long


@dataclass
class Extraction:
    values: dict[str, str] = field(default_factory=lambda: {f: "" for f in FIELDS})
    found: dict[str, str] = field(default_factory=dict)
    positions: dict[str, int] = field(default_factory=dict)  # field -> offset of its heading
    issues: list[L.Issue] = field(default_factory=list)
    unknown_macros: set[str] = field(default_factory=set)
    fallback: bool = False

    def issue(self, kind, level, message, field_=None):
        self.issues.append(L.Issue(kind, level, message, field_))


_LABEL = re.compile(
    r"(?:^|(?<=[.!?])[ \t]+|\n)[ \t]*(?:what\s+(?:was|were)\s+)?(easy|difficult|hard)(?:\s+parts?)?\s*:\s*",
    re.I | re.M,
)


def split_merged(text: str) -> tuple[str, str] | None:
    """Split a merged easy/difficult text at explicit labels ("Easy: ... Difficult: ..."), each used
    once; None when the text has no such labels."""
    labels = list(_LABEL.finditer(text))
    kinds = [m.group(1).lower().replace("hard", "difficult") for m in labels]
    if sorted(kinds) != ["difficult", "easy"]:
        return None
    parts = {}
    for i, m in enumerate(labels):
        end = labels[i + 1].start() if i + 1 < len(labels) else len(text)
        parts[kinds[i]] = text[m.end() : end].strip()
    lead = text[: labels[0].start()].strip()
    if lead:  # text before the first label belongs to neither: keep it with the first part
        parts[kinds[0]] = f"{lead} {parts[kinds[0]]}".strip()
    return parts["easy"], parts["difficult"]


def extract_parts(src: str, macros: dict[str, str] | None = None, merged_policy: str = "easy") -> Extraction:
    """Short and long easy/difficult texts and the short scope of one report's expanded LaTeX
    (comments already stripped). merged_policy: where an unsplittable merged part goes: "easy"
    (difficult left empty) or "both"."""
    out = Extraction()
    headings = find_headings(src, macros)
    regions, implicit = summary_regions(src, headings)

    def in_summary(h: Heading) -> bool:
        return any(a <= h.start < b for a, b in regions)

    def text_of(h: Heading, keep_paragraphs=False) -> str:
        conv = to_text(
            src[h.body_start : h.end], macros, keep_paragraphs=keep_paragraphs, comments_stripped=True
        )
        out.unknown_macros |= conv.unknown_macros
        out.fallback |= conv.fallback
        return conv.text.lstrip(":.-–— ").strip()

    targets = [h for h in headings if h.kind in TARGETS]
    if implicit and any(in_summary(h) for h in targets):
        out.issue(
            L.AMBIGUOUS,
            "info",
            "no 'Reproducibility Summary' heading or abstract: parts before the first "
            "numbered section are taken as the short form",
        )

    for form in ("short", "long"):
        hs = [h for h in targets if in_summary(h) == (form == "short")]
        suffix = "" if form == "short" else "_long"
        by_kind = {k: [h for h in hs if h.kind == k] for k in TARGETS}
        if form == "long" and not (by_kind[EASY] or by_kind[DIFFICULT] or by_kind[MERGED]):
            out.issue(L.MISSING_PART, "info", "no long form (discussion section) of the easy/difficult parts")
            continue
        if form == "short" and not (by_kind[EASY] or by_kind[DIFFICULT] or by_kind[MERGED]):
            out.issue(
                L.MISSING_PART,
                "warning",
                "no 'What was easy'/'What was difficult' heading in the short form (summary)",
                "easy",
            )
        chosen: dict[str, tuple[str, Heading]] = {}
        for kind in (EASY, DIFFICULT):
            cands = by_kind[kind]
            if cands:
                if len(cands) > 1:
                    out.issue(
                        L.AMBIGUOUS,
                        "warning",
                        f"{len(cands)} '{kind}' headings in the {form} form "
                        f"({'; '.join(c.describe() for c in cands)}); the first is used",
                        kind + suffix,
                    )
                chosen[kind] = (text_of(cands[0]), cands[0])
        if by_kind[MERGED]:
            m = by_kind[MERGED][0]
            if EASY in chosen and DIFFICULT in chosen:
                out.issue(
                    L.MERGED,
                    "info",
                    f"merged heading {m.describe()} in the {form} form has separate easy "
                    f"and difficult headings ({chosen[EASY][1].describe()}, "
                    f"{chosen[DIFFICULT][1].describe()}): "
                    "those are used",
                    "easy" + suffix,
                )
            else:
                merged_text = text_of(m, keep_paragraphs=True)
                split = split_merged(merged_text)
                where = f"{form} form: {m.describe()}"
                if split is not None:
                    out.issue(
                        L.SPLIT,
                        "warning",
                        f"merged part split at its explicit easy/difficult labels ({where})",
                        "easy" + suffix,
                    )
                    for kind, txt in zip((EASY, DIFFICULT), split, strict=True):
                        chosen.setdefault(kind, (" ".join(txt.split()), m))
                else:
                    merged_text = " ".join(merged_text.split())
                    missing = [k for k in (EASY, DIFFICULT) if k not in chosen]
                    if merged_policy == "both":
                        for k in missing:
                            chosen[k] = (merged_text, m)
                        placed = "copied to both easy and difficult"
                    elif EASY in missing:
                        chosen[EASY] = (merged_text, m)
                        placed = "kept whole in easy; difficult left empty"
                    else:
                        placed = "not used (a separate easy heading exists); difficult left empty"
                    out.issue(
                        L.MERGED,
                        "warning",
                        f"one merged easy/difficult part ({where}), not split (no explicit labels): {placed}",
                        "easy" + suffix,
                    )
        for kind in (EASY, DIFFICULT):
            name = kind + suffix
            if kind in chosen:
                txt, h = chosen[kind]
                out.values[name] = txt
                out.found[name] = h.describe()
                out.positions[name] = h.start
                if not txt:
                    out.issue(L.EMPTY_PART, "warning", f"{h.describe()} has no text", name)
            elif not (
                kind == DIFFICULT
                and any(i.kind == L.MERGED and i.field == "easy" + suffix for i in out.issues)
            ):
                if form == "short" and (EASY in chosen or DIFFICULT in chosen):
                    out.issue(L.MISSING_PART, "warning", f"no '{kind}' heading in the short form", name)
                elif form == "long" and (EASY in chosen or DIFFICULT in chosen):
                    out.issue(L.MISSING_PART, "info", f"no '{kind}' heading in the long form", name)

    short_scope = [h for h in targets if h.kind == SCOPE and in_summary(h)]
    if short_scope:
        h = short_scope[0]
        out.values["scope"] = text_of(h)
        out.found["scope"] = h.describe()
        out.positions["scope"] = h.start
        if len(short_scope) > 1:
            out.issue(
                L.AMBIGUOUS,
                "warning",
                f"{len(short_scope)} scope headings in the short form; the first is used",
                "scope",
            )
        if not out.values["scope"]:
            out.issue(L.EMPTY_PART, "warning", f"{h.describe()} has no text", "scope")
    else:
        long_scope = [h for h in targets if h.kind == SCOPE]
        note = " (a long 'Scope of reproducibility' section exists; not used)" if long_scope else ""
        out.issue(
            L.MISSING_PART,
            "warning",
            f"no 'Scope of reproducibility' heading in the short form{note}",
            "scope",
        )

    if not any(h.kind in (EASY, DIFFICULT, MERGED) for h in targets):
        out.issues = [i for i in out.issues if not (i.kind == L.MISSING_PART and i.field in ("easy", None))]
        out.issue(
            L.NO_EASY_DIFFICULT,
            "warning",
            "no 'What was easy'/'What was difficult' heading anywhere (summary, abstract or discussion)",
        )
    return out
