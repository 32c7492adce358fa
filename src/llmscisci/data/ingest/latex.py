"""LaTeX source to readable text (pylatexenc): comments dropped, math kept as `$...$`.

Also reads a report's sources as one document (`\\input`/`\\include` resolved, comments stripped),
remembering which file each part of the expanded text came from.
"""

from __future__ import annotations

import bisect
import re
from dataclasses import dataclass, field
from pathlib import Path

from pylatexenc import latex2text, latexwalker
from pylatexenc.macrospec import std_environment, std_macro

# ---------------------------------------------------------------------------------------------
# comments and zero-argument user macros


def strip_comments(src: str) -> str:
    """Drop `%` comments like TeX does: the rest of the line, its newline and the next line's
    leading blanks. `\\%` stays; `comment` environments and `\\iffalse ... \\fi` blocks go."""
    out = []
    lines = src.splitlines(keepends=True)
    joining = False
    for line in lines:
        if joining:
            line = line.lstrip(" \t")
        idx = _comment_start(line)
        if idx is None:
            out.append(line)
            joining = False
        else:
            out.append(line[:idx])
            joining = True
    text = "".join(out)
    text = re.sub(r"\\begin\{comment\}.*?\\end\{comment\}", "", text, flags=re.S)
    text = re.sub(r"\\iffalse\b.*?\\fi\b", "", text, flags=re.S)
    return text


def _comment_start(line: str) -> int | None:
    i = line.find("%")
    while i != -1:
        k = i - 1
        n_back = 0
        while k >= 0 and line[k] == "\\":
            n_back += 1
            k -= 1
        if n_back % 2 == 0:
            return i
        i = line.find("%", i + 1)
    return None


def match_brace(src: str, open_pos: int) -> int:
    """Index just after the `}` closing the `{` at open_pos (escaped braces skipped); len(src)
    when unbalanced."""
    depth = 0
    i = open_pos
    n = len(src)
    while i < n:
        c = src[i]
        if c == "\\":
            i += 2
            continue
        if c == "{":
            depth += 1
        elif c == "}":
            depth -= 1
            if depth == 0:
                return i + 1
        i += 1
    return n


_NEWCOMMAND = re.compile(
    r"\\(?:re)?newcommand\*?\s*(?:\{\s*\\([A-Za-z]+)\s*\}|\\([A-Za-z]+))\s*(\[\s*\d\s*\])?\s*\{"
    r"|\\providecommand\*?\s*(?:\{\s*\\([A-Za-z]+)\s*\}|\\([A-Za-z]+))\s*(\[\s*\d\s*\])?\s*\{"
    r"|\\def\s*\\([A-Za-z]+)\s*\{"
)


def user_macros(src: str) -> dict[str, str]:
    """Zero-argument macros the document defines (`\\newcommand{\\X}{...}`, `\\def\\X{...}`):
    name -> LaTeX body. Macros with arguments are left alone (their arguments render as text)."""
    found: dict[str, str] = {}
    for m in _NEWCOMMAND.finditer(src):
        name = next((g for g in (m.group(1), m.group(2), m.group(4), m.group(5), m.group(7)) if g), None)
        nargs = m.group(3) or m.group(6)
        end = match_brace(src, m.end() - 1)
        if name is None or nargs:
            continue
        body = src[m.end() : end - 1]
        if "#" in body or len(body) > 300:
            continue
        found.setdefault(name, body)
    return found


# ---------------------------------------------------------------------------------------------
# parsing and text contexts

_CITES = (
    "cite citet citep citealp citealt citeauthor citeyear citeyearpar citenum parencite textcite autocite "
    "supercite footcite nocite Cite Citet Citep Citeauthor smartcite fullcite"
).split()
_REFS = "ref autoref cref Cref eqref pageref nameref vref Vref labelcref".split()
_LAYOUT = (
    "newpage clearpage cleardoublepage noindent centering par smallskip medskip bigskip linebreak pagebreak "
    "hfill vfill raggedright raggedleft small footnotesize large Large LARGE huge Huge normalsize tiny "
    "scriptsize bfseries itshape mdseries upshape em bf it rm sf tt sc ttfamily rmfamily sffamily maketitle "
    "tableofcontents appendix protect relax xspace phantomsection sloppy null hline toprule midrule "
    "bottomrule indent nointerlinepenalty frenchspacing onecolumn twocolumn printbibliography"
).split()
_DROP_ARGS = {
    "label": "{",
    "vspace": "*{",
    "hspace": "*{",
    "setlength": "{{",
    "addtolength": "{{",
    "setcounter": "{{",
    "addtocounter": "{{",
    "color": "[{",
    "pagecolor": "[{",
    "todo": "[{",
    "footnotetext": "[{",
    "footnotemark": "[",
    "caption": "*[{",
    "captionof": "*{[{",
    "includegraphics": "*[{",
    "newcommand": "*{[[{",
    "renewcommand": "*{[[{",
    "providecommand": "*{[[{",
    "bibliographystyle": "{",
    "bibliography": "{",
    "input": "{",
    "include": "{",
    "hypersetup": "{",
    "thispagestyle": "{",
    "pagestyle": "{",
    "usepackage": "[{",
    "graphicspath": "{",
    "sidenote": "[{",
    "marginpar": "[{",
}
_KEEP_ARGS = "textsuperscript textsubscript mbox textrm textsf textsc underline uline textnormal".split()
_HEADINGS = ("part", "chapter", "section", "subsection", "subsubsection", "paragraph", "subparagraph")
_MATH_ENVS = (
    "equation equation* align align* gather gather* multline multline* eqnarray eqnarray* displaymath "
    "math flalign flalign* alignat alignat*"
).split()
_DROP_ENVS = (
    "figure figure* table table* wrapfigure wraptable tabular tabular* tabularx longtable algorithm "
    "algorithm2e algorithmic lstlisting minted verbatim tikzpicture subfigure thebibliography comment"
).split()


def _walker_db():
    db = latexwalker.get_default_latex_context_db()
    macros = [std_macro(h, "*[{") for h in _HEADINGS]
    macros += [std_macro(c, "*[[{") for c in _CITES]
    macros += [std_macro(r, "*{") for r in _REFS]
    macros += [std_macro(name, spec) for name, spec in _DROP_ARGS.items()]
    macros += [
        std_macro("href", "[{{"),
        std_macro("url", "{"),
        std_macro("nolinkurl", "{"),
        std_macro("footnote", "[{"),
        std_macro("textcolor", "[{{"),
        std_macro("colorbox", "[{{"),
        std_macro("item", "["),
    ]
    macros += [std_macro(name, "{") for name in _KEEP_ARGS]
    db.add_context_category(
        "llmscisci", macros=macros, environments=[std_environment("tabular", "{")], prepend=True
    )
    return db


def _heading_repl(n, l2tobj):
    args = n.nodeargd.argnlist if n.nodeargd else []
    title = l2tobj._groupnodecontents_to_text(args[-1]).strip() if args and args[-1] is not None else ""
    title = " ".join(title.split())
    if not title:
        return "\n\n"
    sep = " " if title[-1] in ".:?!" else ": "
    return f"\n\n{title}{sep}"


def _math_env_repl(n):
    body = "".join(x.latex_verbatim() for x in n.nodelist)
    body = re.sub(r"\\label\s*\{[^}]*\}", "", body)
    body = " ".join(body.split())
    return f" ${body}$ " if body else ""


def _text_db():
    db = latex2text.get_default_latex_context_db()
    M = latex2text.MacroTextSpec
    E = latex2text.EnvironmentTextSpec
    nothing = lambda n: ""  # noqa: E731
    macros = [M(c, simplify_repl=nothing) for c in _CITES + _REFS + list(_DROP_ARGS) + _LAYOUT]
    macros += [M(h, simplify_repl=_heading_repl) for h in _HEADINGS]
    macros += [
        M("footnote", simplify_repl=nothing),
        M("url", simplify_repl="%(1)s"),
        M("nolinkurl", simplify_repl="%(1)s"),
        M("href", simplify_repl="%(3)s"),
        M("textcolor", simplify_repl="%(3)s"),
        M("colorbox", simplify_repl="%(3)s"),
        M("newline", simplify_repl=" "),
        M("LaTeX", simplify_repl="LaTeX"),
        M("TeX", simplify_repl="TeX"),
    ]
    macros += [M(name, discard=False) for name in _KEEP_ARGS]
    envs = [E(e, simplify_repl=_math_env_repl) for e in _MATH_ENVS]
    envs += [E(e, discard=True) for e in _DROP_ENVS]
    db.add_context_category("llmscisci", macros=macros, environments=envs, prepend=True)
    return db


_WALKER_DB = _walker_db()
_TEXT_DB = _text_db()


class _ToText(latex2text.LatexNodes2Text):
    """latex2text with math kept verbatim as `$...$`, user macros expanded, unknown macros recorded."""

    def __init__(self, macros: dict[str, str], unknown: set[str]):
        super().__init__(latex_context=_TEXT_DB, math_mode="verbatim", strict_latex_spaces=True)
        self._user = macros
        self._unknown = unknown
        self._depth = 0

    def math_node_to_text(self, node):
        body = "".join(x.latex_verbatim() for x in node.nodelist)
        body = " ".join(body.split())
        return f"${body}$" if body else ""

    def macro_node_to_text(self, node):
        name = node.macroname
        if self.latex_context.get_macro_spec(name) is None:
            if name in self._user and self._depth < 3:
                self._depth += 1
                try:
                    return self.nodelist_to_text(_parse(self._user[name]))
                finally:
                    self._depth -= 1
            args = [a for a in (node.nodeargd.argnlist if node.nodeargd else []) if a is not None]
            if args:  # a macro the parser knows the arguments of: keep their text
                return "".join(self._groupnodecontents_to_text(a) for a in args)
            if name.isalpha():
                self._unknown.add(name)
            return ""
        return super().macro_node_to_text(node)


def _parse(src: str):
    walker = latexwalker.LatexWalker(src, latex_context=_WALKER_DB, tolerant_parsing=True)
    nodes, _, _ = walker.get_latex_nodes()
    return nodes


_SPACE_BEFORE_PUNCT = re.compile(r"\s+([,.;:!?)\]])")
_SPACE_AFTER_OPEN = re.compile(r"([(\[])\s+")


def tidy(text: str, keep_paragraphs: bool = False) -> str:
    """Whitespace: non-breaking spaces to spaces, runs collapsed (paragraph breaks kept on request),
    no blank before closing punctuation (left behind by dropped citations/references)."""
    text = text.replace("\xa0", " ").replace("\u200b", "")
    if keep_paragraphs:
        paras = [" ".join(p.split()) for p in re.split(r"\n\s*\n", text)]
        text = "\n\n".join(p for p in paras if p)
    else:
        text = " ".join(text.split())
    text = _SPACE_BEFORE_PUNCT.sub(r"\1", text)
    text = _SPACE_AFTER_OPEN.sub(r"\1", text)
    text = re.sub(r"\(\s*\)", "", text)
    text = re.sub(r"[ \t]{2,}", " ", text)
    return text.strip()


@dataclass
class Converted:
    text: str
    unknown_macros: set[str] = field(default_factory=set)
    fallback: bool = False  # the parser failed; a crude regex conversion was used


def to_text(
    latex: str,
    macros: dict[str, str] | None = None,
    *,
    keep_paragraphs: bool = False,
    comments_stripped: bool = False,
) -> Converted:
    """Readable text from a LaTeX fragment: macros to text, citations/references/footnotes/figures
    dropped, math kept verbatim as `$...$`, comments dropped."""
    src = latex if comments_stripped else strip_comments(latex)
    unknown: set[str] = set()
    try:
        text = _ToText(macros or {}, unknown).nodelist_to_text(_parse(src))
        fallback = False
    except Exception:  # pylatexenc can fail on badly broken input: degrade, and say so
        text = _crude_text(src)
        fallback = True
    return Converted(tidy(text, keep_paragraphs=keep_paragraphs), unknown, fallback)


def _crude_text(src: str) -> str:
    text = re.sub(r"\\(?:cite\w*|ref|autoref|cref|label)\*?\s*(\[[^\]]*\])*\s*\{[^}]*\}", "", src)
    text = re.sub(r"\\[A-Za-z]+\*?", "", text)
    return text.replace("{", "").replace("}", "")


# ---------------------------------------------------------------------------------------------
# reading a report's sources as one document

_INPUT = re.compile(
    r"\\(input|include|subfile)\s*\{([^}]*)\}|\\input\s+([^\s{}\\]+)|\\(?:sub)?import\s*\{([^}]*)\}\s*\{([^}]*)\}"
)


@dataclass
class Document:
    """A report's LaTeX with inputs expanded and comments stripped; `files` maps offsets to files."""

    text: str
    main: Path
    offsets: list[int] = field(default_factory=list)
    files: list[str] = field(default_factory=list)
    missing_inputs: list[str] = field(default_factory=list)

    def prepend(self, other: Document) -> None:
        """Put another document's text before this one (a summary the entry file does not input)."""
        shift = len(other.text) + 2
        self.text = other.text + "\n\n" + self.text
        self.offsets = other.offsets + [o + shift for o in self.offsets]
        self.files = other.files + self.files
        self.missing_inputs = other.missing_inputs + self.missing_inputs

    def file_at(self, pos: int) -> str:
        if not self.offsets:
            return str(self.main)
        i = bisect.bisect_right(self.offsets, pos) - 1
        return self.files[max(i, 0)]


def read_document(
    main: Path, search_dirs: list[Path] | None = None, root: Path | None = None, max_depth: int = 12
) -> Document:
    """Read `main` with `\\input`/`\\include`/`\\subfile`/`\\import` expanded. LaTeX resolves input
    paths from the directory it runs in; authors also write them relative to the including file or
    their submission folder, so each of those is tried."""
    main = Path(main)
    dirs = [main.parent] + [d for d in (search_dirs or []) if d != main.parent]
    root = root or main.parent
    doc = Document("", main)
    pieces: list[tuple[str, str]] = []

    def rel(p: Path) -> str:
        try:
            return str(p.resolve().relative_to(root.resolve()))
        except ValueError:
            return str(p)

    def resolve(name: str, including: Path) -> Path | None:
        name = name.strip()
        cands = [name] if Path(name).suffix == ".tex" else [name + ".tex", name]
        for base in [*dirs[:1], including.parent, *dirs[1:]]:
            for c in cands:
                p = base / c
                if p.is_file():
                    return p
        return None

    def expand(path: Path, depth: int, stack: tuple[Path, ...]) -> None:
        try:
            raw = path.read_text(encoding="utf-8")
        except UnicodeDecodeError:
            raw = path.read_text(encoding="latin-1")
        src = strip_comments(raw)
        pos = 0
        for m in _INPUT.finditer(src):
            if m.group(4) is not None:
                name = str(Path(m.group(4)) / m.group(5))
            else:
                name = m.group(2) if m.group(2) is not None else m.group(3)
            pieces.append((src[pos : m.start()], rel(path)))
            pos = m.end()
            target = resolve(name, path)
            if target is None:
                doc.missing_inputs.append(f"{rel(path)}: {name}")
                continue
            if target.resolve() in stack or depth >= max_depth:
                continue
            if target.suffix not in ("", ".tex", ".ltx"):
                continue
            expand(target, depth + 1, stack + (target.resolve(),))
        pieces.append((src[pos:], rel(path)))

    expand(main, 0, (main.resolve(),))
    offset = 0
    texts = []
    for text, name in pieces:
        if not text:
            continue
        if not doc.files or doc.files[-1] != name:
            doc.offsets.append(offset)
            doc.files.append(name)
        texts.append(text)
        offset += len(text)
    doc.text = "".join(texts)
    return doc
