"""Ingestion units: LaTeX to text, heading classification, part extraction, metadata, and a build over
small invented sources (tests/fixtures/latex/mlrc) in styles the five real reports do not cover."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest

from llmscisci.data.ingest import log as L
from llmscisci.data.ingest.build import build, find_reports, write_output
from llmscisci.data.ingest.latex import read_document, strip_comments, to_text, user_macros
from llmscisci.data.ingest.metadata import normalise_doi, read_metadata, review_id
from llmscisci.data.ingest.sections import classify, extract_parts, split_merged
from llmscisci.data.reports import load_reports
from llmscisci.errors import UserError

FIXTURES = Path(__file__).parent / "fixtures" / "latex" / "mlrc"


# ---------------------------------------------------------------- LaTeX to text


@pytest.mark.parametrize(
    "latex, text",
    [
        (r"see \cite{a} and Table~\ref{t}, done", "see and Table, done"),
        (r"the $\beta$ value and \( \alpha \) and \[ x^2 \]", r"the $\beta$ value and $\alpha$ and $x^2$"),
        (r"\begin{equation} y = 1 \label{e} \end{equation} after", "$y = 1$ after"),
        (
            r"MNIST \& ImageNet, \textit{train\_classifier.py}, 50\%",
            "MNIST & ImageNet, train_classifier.py, 50%",
        ),
        (r"\textbf{bold} \emph{em} \texttt{tt} \underline{u}", "bold em tt u"),
        (
            r"code\footnote{\url{https://x.org}} is \href{https://y.org}{here} and \url{https://z.org}",
            "code is here and https://z.org",
        ),
        ("one % a comment\ntwo\n% whole line\nthree", "one two three"),
        (r"\begin{figure}\includegraphics{a.png}\caption{Cap}\end{figure}Text", "Text"),
        (r"\begin{itemize}\item A \item B\end{itemize}", "* A * B"),
    ],
)
def test_to_text(latex, text):
    assert to_text(latex).text == text


def test_to_text_records_unknown_macros_and_expands_user_macros():
    conv = to_text(r"we use \ours{} and \mystery here", {"ours": r"Our\textbf{Net}"})
    assert conv.text == "we use OurNet and here"
    assert conv.unknown_macros == {"mystery"}
    assert not conv.fallback


def test_strip_comments_keeps_escaped_percent():
    assert strip_comments("50\\% ok % gone\nnext") == "50\\% ok next"
    assert strip_comments("a\\\\% gone\nb") == "a\\\\b"  # \\ then a real comment


def test_user_macros_zero_argument_only():
    src = r"\newcommand{\ours}{OurNet}\newcommand\two[1]{#1!}\def\short{S}\renewcommand{\x}{X}"
    assert user_macros(src) == {"ours": "OurNet", "short": "S", "x": "X"}


def test_read_document_resolves_inputs_and_records_missing(tmp_path):
    (tmp_path / "journal").mkdir()
    (tmp_path / "openreview" / "sec").mkdir(parents=True)
    (tmp_path / "journal" / "article.tex").write_text("A \\input{../openreview/content} B \\input{nowhere}\n")
    (tmp_path / "openreview" / "content.tex").write_text("C % \\input{sec/x}\n\\input{sec/part.tex}")
    (tmp_path / "openreview" / "sec" / "part.tex").write_text("D")
    doc = read_document(tmp_path / "journal" / "article.tex", [tmp_path / "openreview"], root=tmp_path)
    assert " ".join(doc.text.split()) == "A C D B"
    assert doc.missing_inputs == ["journal/article.tex: nowhere"]
    assert doc.file_at(doc.text.index("D")) == "openreview/sec/part.tex"


# ---------------------------------------------------------------- headings


@pytest.mark.parametrize(
    "title, kind",
    [
        ("What was easy", "easy"),
        ("What was easy?", "easy"),
        ("WHAT WAS EASY:", "easy"),
        ("Easy", "easy"),
        ("What was difficult", "difficult"),
        ("What was hard", "difficult"),
        ("Difficulties", "difficult"),
        ("What was easy and difficult", "merged"),
        ("What was easy/difficult", "merged"),
        ("What was easy and what was difficult", "merged"),
        ("Scope of Reproducibility", "scope"),
        ("Scope of reproducibility", "scope"),
        ("Reproducibility Summary", "summary"),
        ("Communication with original authors", "communication"),
        ("Introduction", "other"),
        ("Why was it difficult to train the easy model on GPUs", "other"),
    ],
)
def test_classify(title, kind):
    assert classify(title) == kind


def test_split_merged_only_at_explicit_labels():
    assert split_merged("Easy: the code.\n\nDifficult: the maths.") == ("the code.", "the maths.")
    assert split_merged("What was easy: A. What was hard: B.") == ("A.", "B.")
    assert split_merged("The code was easy to run but the maths was difficult.") is None
    assert split_merged("Easy: A. Easy: B.") is None


def _doc(body: str) -> str:
    return strip_comments("\\begin{document}\n" + body + "\n\\end{document}")


@pytest.mark.parametrize(
    "cmd", ["section", "section*", "subsection", "subsection*", "paragraph", "paragraph*"]
)
def test_heading_styles_short_form(cmd):
    top = cmd if cmd.startswith("section") else "section*"
    src = _doc(
        f"\\{top}{{Reproducibility Summary}}\n"
        f"\\{cmd}{{Scope of reproducibility}} S.\n\\{cmd}{{What was easy}} E.\n"
        f"\\{cmd}{{What was difficult}}\nD.\n\\{cmd}{{Communication with original authors}} C.\n"
        "\\section{Introduction}\nI."
    )
    ex = extract_parts(src)
    assert (ex.values["scope"], ex.values["easy"], ex.values["difficult"]) == ("S.", "E.", "D.")
    assert ex.values["easy_long"] == "" and any(
        i.kind == L.MISSING_PART and "long" in i.message for i in ex.issues
    )


def test_long_form_under_discussion_and_commented_headings_ignored():
    src = _doc(
        "\\section*{Reproducibility Summary}\n\\subsection*{What was easy}\nshort easy\n"
        "\\subsection*{What was difficult}\nshort diff\n\\section{Introduction}\nx\n"
        "\\section{Discussion}\n\\subsection{What was easy}\nlong easy\n"
        "% \\subsection{What was difficult} commented out\n"
        "\\subsection{What was difficult}\nlong diff \\begin{figure}\\caption{no}\\end{figure}\n"
        "\\subsubsection{Compute}\nGPUs.\n\\section*{Acknowledgements}\nthanks"
    )
    ex = extract_parts(src)
    assert ex.values["easy"] == "short easy" and ex.values["difficult"] == "short diff"
    assert ex.values["easy_long"] == "long easy"
    assert ex.values["difficult_long"] == "long diff Compute: GPUs."


def test_merged_part_reported_and_policy():
    src = _doc(
        "\\section*{Reproducibility Summary}\n\\subsection*{What was easy and difficult}\n"
        "The code ran. The maths was hard.\n\\section{Introduction}"
    )
    ex = extract_parts(src)
    assert ex.values["easy"] == "The code ran. The maths was hard." and ex.values["difficult"] == ""
    merged = [i for i in ex.issues if i.kind == L.MERGED]
    assert len(merged) == 1 and merged[0].field == "easy" and "difficult left empty" in merged[0].message
    both = extract_parts(src, merged_policy="both")
    assert both.values["difficult"] == both.values["easy"]


def test_no_headings_reported():
    ex = extract_parts(_doc("\\section{Introduction}\nWe did it.\n\\section{Results}\nFine."))
    assert all(v == "" for v in ex.values.values())
    assert {i.kind for i in ex.issues} >= {L.NO_EASY_DIFFICULT, L.MISSING_PART}


# ---------------------------------------------------------------- metadata


def test_metadata_helpers():
    assert normalise_doi(" https://doi.org/10.5281/zenodo.1 ") == "10.5281/zenodo.1"
    assert normalise_doi("doi:10.1/x") == "10.1/x"
    assert review_id("https://openreview.net/forum?id=PCpGvUrwfQB") == "PCpGvUrwfQB"
    assert review_id("https://github.com/ReScience/submissions/issues/1") == ""


def test_metadata_yaml_and_tex_conflict():
    meta, issues = read_metadata(FIXTURES / "2020" / "abstractleadin2021" / "journal")
    assert (meta.doi, meta.volume, meta.issue, meta.review_id) == (
        "10.5281/zenodo.1000001",
        "7",
        "2",
        "AbStRaCt01",
    )
    assert meta.authors == ["Cy Placeholder"] and meta.code_url == "https://github.com/example/abstract"
    conflicts = [i for i in issues if i.kind == L.METADATA_CONFLICT]
    assert len(conflicts) == 1 and conflicts[0].field == "volume"


def test_metadata_tex_only_and_missing(tmp_path):
    meta, issues = read_metadata(FIXTURES / "2022" / "7")
    assert meta.doi == "10.5281/zenodo.1000007" and meta.title == "[Re] A Flat Layout Report"
    assert meta.authors == ["Ada Example", "Bo Sample"] and meta.sources["doi"] == "metadata.tex"
    assert not [i for i in issues if i.level != "info"]
    meta, issues = read_metadata(tmp_path)
    assert meta.doi == "" and {i.kind for i in issues} == {L.MISSING_METADATA, L.MISSING_DOI}
    (tmp_path / "metadata.yaml").write_text("title: [unclosed\n")
    _, issues = read_metadata(tmp_path)
    assert L.METADATA_UNREADABLE in {i.kind for i in issues}


# ---------------------------------------------------------------- build over the fixtures


@pytest.fixture(scope="module")
def fixture_build():
    return build(FIXTURES)


def _log(result, folder):
    return next(lg for lg in result.logs if lg.folder == folder)


def test_fixture_build_rows(fixture_build):
    rows = {r["doi"]: r for r in fixture_build.rows}
    assert sorted(rows) == [
        "10.5281/zenodo.1000001",
        "10.5281/zenodo.1000002",
        "10.5281/zenodo.1000003",
        "10.5281/zenodo.1000007",
    ]
    flat = rows["10.5281/zenodo.1000007"]
    assert flat["mlrc_year"] == "2022" and flat["volume"] == "9" and flat["review_id"] == "FlAt2022xyz"
    assert (
        flat["easy"]
        == "The authors' code was public and easy to run. The paper was clear (50% of it at least)."
    )
    assert flat["difficult"] == r"Some hyperparameters, e.g. the weight $\beta_{1}$, were missing."
    assert flat["easy_long"] == "The code ran out of the box and OurNet trained in $2$ hours."
    assert flat["difficult_long"] == r"Tuning $\lambda$ took long; see Table."
    assert flat["scope"] == "We test two claims of: * Claim one holds. * Claim two holds."
    lead = rows["10.5281/zenodo.1000001"]
    assert (lead["scope"], lead["easy"], lead["difficult"]) == (
        "We check whether the method generalises.",
        "Running the released notebooks.",
        "The data pipeline was undocumented.",
    )
    assert lead["easy_long"] == ""  # a bold "What was easy" mid-sentence is not a heading
    merged = rows["10.5281/zenodo.1000002"]
    assert (merged["easy"], merged["difficult"]) == (
        "the code was complete.",
        "the compute budget was too small.",
    )
    assert (merged["easy_long"], merged["difficult_long"]) == ("Reading the paper.", "Reproducing table 3.")
    para = rows["10.5281/zenodo.1000003"]
    assert para["title"] == "[Re] Paragraph Headings"  # the first folder with that DOI wins
    assert (para["scope"], para["easy"], para["difficult"]) == (
        "Claims about robustness.",
        "Installing the package.",
        "",
    )
    assert para["easy_long"] == "Installing the package with pip."
    assert para["difficult_long"] == "Nothing in particular. Details: The seeds differed."


def test_fixture_build_log(fixture_build):
    res = fixture_build
    kinds = lambda folder: {i.kind for i in _log(res, folder).issues}  # noqa: E731
    assert _log(res, "2022/editorial").status == "skipped"
    nop = _log(res, "2020/noparts2021")
    assert nop.status == "excluded" and {L.MISSING_DOI, L.NO_EASY_DIFFICULT} <= kinds("2020/noparts2021")
    assert L.SPLIT in kinds("2021/mergedlabels2022") and L.MERGED in kinds("2021/mergedlabels2022")
    assert {L.EMPTY_PART, L.INPUT_MISSING} <= kinds("2021/paragraphs2022")
    dup = _log(res, "2021/zduplicate2022")
    assert dup.status == "excluded" and L.DUPLICATE_DOI in kinds("2021/zduplicate2022")
    assert L.METADATA_CONFLICT in kinds("2020/abstractleadin2021")
    flat = _log(res, "2022/7")
    assert flat.main_file == "content.tex" and flat.found["easy"] == "summary.tex: \\subsection{What was easy}"
    assert any("summary.tex is not input by content.tex" in i.message for i in flat.issues)


def test_build_years_and_output(tmp_path, fixture_build):
    res = build(FIXTURES, years=["2020"])
    assert [r["doi"] for r in res.rows] == ["10.5281/zenodo.1000001"]
    with pytest.raises(UserError, match="no edition folder"):
        build(FIXTURES, years=["1999"])
    with pytest.raises(UserError, match="no edition folders"):
        find_reports(FIXTURES / "2020")
    out = write_output(fixture_build, tmp_path / "data", root=str(FIXTURES))
    df = load_reports(out)  # the toolkit's loader reads what the build wrote
    assert list(pd.read_csv(out / "mlrc_reports.csv").columns) == [
        "doi",
        "mlrc_year",
        "title",
        "volume",
        "issue",
        "review_id",
        "easy",
        "difficult",
        "easy_long",
        "difficult_long",
        "scope",
    ]
    assert len(df) == 4
    log = [json.loads(x) for x in (out / "ingestion_log.jsonl").read_text().splitlines()]
    assert len(log) == 7 and {r["status"] for r in log} == {"ok", "incomplete", "excluded", "skipped"}
    summary = (out / "ingestion_summary.txt").read_text()
    assert "missing_doi" in summary and "2020/noparts2021" in summary
    with pytest.raises(UserError, match="not empty"):
        write_output(fixture_build, out)
