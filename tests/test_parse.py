"""The answer parser: formats, the none policy, exact-format checks, the 420 annotator pairs, fuzzing."""

from __future__ import annotations

from pathlib import Path

import csv
import json

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from llmscisci.data.codebook import Category, Codebook, load_codebook
from llmscisci.data.validate import is_valid
from llmscisci.tasks.parse import VARIANTS, Parsed, is_exact_format, parse_answer, render_answer

FIXTURE_DATA = Path(__file__).resolve().parent / "fixtures" / "data"  # sources and seed formats

EASY = load_codebook("easy")
DIFF = load_codebook("difficult")
BOOKS = {"easy": EASY, "difficult": DIFF}


def labels(text: str, cb: Codebook = EASY):
    return parse_answer(text, cb).labels


@pytest.mark.parametrize(
    "text, expected",
    [
        ("[1, 3]", (1, 0, 1, 0, 0)),
        ("[4]", (0, 0, 0, 1, 0)),
        ("1, 3", (1, 0, 1, 0, 0)),
        ("Categories 2 and 4", (0, 1, 0, 1, 0)),
        ("Category: 3", (0, 0, 1, 0, 0)),
        ("Answer: 2", (0, 1, 0, 0, 0)),
        ("5", (0, 0, 0, 0, 1)),
        ("Code, artifacts, readability and setup", (1, 1, 1, 1, 0)),
        ("Availability of code and readability of full text", (1, 0, 1, 0, 0)),
        ('{"code": "Yes", "artifacts": "No", "readability": "yes", "setup": "no", "none": "No"}',
         (1, 0, 1, 0, 0)),
        ('{"Availability of code": "Yes", "Supporting artifacts": "No", '
         '"Experimental setup or environment": "Yes"}', (1, 0, 0, 1, 0)),
        ('{"code": true, "artifacts": false, "readability": false, "setup": true, "none": false}',
         (1, 0, 0, 1, 0)),
        ("{'code': True, 'setup': False}", (1, 0, 0, 0, 0)),
        ('{"1": true, "2": true}', (1, 1, 0, 0, 0)),
        ('{"labels": [2, 3], "reasoning": "the code was available"}', (0, 1, 1, 0, 0)),
        ("[1, 0, 1, 0, 0]", (1, 0, 1, 0, 0)),
        ("[true, false, false, true, false]", (1, 0, 0, 1, 0)),
        ('["Yes", "No", "No", "No", "No"]', (1, 0, 0, 0, 0)),
        ("1 0 0 1 0", (1, 0, 0, 1, 0)),
        ('["1. Availability of Code", "3. Readability of Full Text"]', (1, 0, 1, 0, 0)),
        ('["5. Cannot extract concrete factors that Eased Reproducibility."]', (0, 0, 0, 0, 1)),
        ("['code', 'setup']", (1, 0, 0, 1, 0)),
        ("```json\n[2, 4]\n```", (0, 1, 0, 1, 0)),
        ("Sure! Here is my answer:\n```\n[2]\n```\nI hope this helps.", (0, 1, 0, 0, 0)),
        ("<label>[1, 3]</label>", (1, 0, 1, 0, 0)),
        ("Reasoning: the paper mentions code 5 times.\n<label>[3]</label>", (0, 0, 1, 0, 0)),
        ("<think>maybe [4]?</think>\n[1]", (1, 0, 0, 0, 0)),
        ("The categories that apply are [1, 2].", (1, 1, 0, 0, 0)),
        ("Code availability: yes\nReadability: no\nSetup: yes", (1, 0, 0, 1, 0)),
        ('Readability of full text: "the authors released their code, easy to run"', (0, 0, 1, 0, 0)),
        ("Readability: 'well written'. Code: 'their code ran'. Setup: 'the hyperparameters were listed'.",
         (1, 0, 1, 1, 0)),
        ('None: this "easy" text only lists difficulties with the code.', (0, 0, 0, 0, 1)),
        ("1. Availability of code\n3. Readability of full text", (1, 0, 1, 0, 0)),
    ],
)
def test_easy_formats(text, expected):
    got = parse_answer(text, EASY)
    assert got.labels == expected, got
    assert got.valid


@pytest.mark.parametrize(
    "text, expected",
    [
        ("Missing nuance and algorithm details", (1, 1, 0, 0, 0)),
        ('["1. Missing Algorithm step or Architecture details", '
         '"3. Unclear notation or documentation in the codebase"]', (1, 0, 1, 0, 0)),
        ('["2. Missing nuance details", "4. Insufficient Math/Equations"]', (0, 1, 0, 1, 0)),
        # the longest phrase wins: this display name is `documentation`, not `math` ("notation")
        ("Unclear notation or documentation in the codebase", (0, 0, 1, 0, 0)),
        ("Missing algorithm details and unclear notation: \"the symbols were undefined\"", (1, 0, 0, 1, 0)),
        ('{"algorithm": false, "nuance": true, "documentation": false, "math": true, "none": false}',
         (0, 1, 0, 1, 0)),
        ("Missing algorithm details / code not provided: \"no code\"", (1, 0, 0, 0, 0)),
    ],
)
def test_difficult_formats(text, expected):
    assert labels(text, DIFF) == expected


@pytest.mark.parametrize(
    "text, expected",
    [
        ("[]", (0, 0, 0, 0, 1)),  # all-zero -> none
        ("[0, 0, 0, 0, 0]", (0, 0, 0, 0, 1)),
        ("[1, 5]", (1, 0, 0, 0, 0)),  # none with others -> the others
        ('{"code": false, "artifacts": false, "readability": false, "setup": false, "none": false}',
         (0, 0, 0, 0, 1)),
        ("Code, none", (1, 0, 0, 0, 0)),
    ],
)
def test_none_policy_marks_repaired(text, expected):
    got = parse_answer(text, EASY)
    assert got == Parsed(expected, True, True, got.method)


def test_unrepaired_answers_are_not_marked():
    assert parse_answer("[5]", EASY).repaired is False
    assert parse_answer("[2, 3]", EASY).repaired is False


@pytest.mark.parametrize("text", ["", "   ", "hello world", "[7]", "[0]", "[1, 9]", "{}", "I cannot tell.",
                                  '{"code": tr', "```\n```", "<label></label>", "Category 12"])
def test_unparseable_is_invalid(text):
    got = parse_answer(text, EASY)
    assert got.labels is None and got.valid is False and got.repaired is False


@pytest.mark.parametrize("value", [None, 3, b"[1]", ["[1]"]])
def test_non_string_input_is_invalid_not_an_error(value):
    assert parse_answer(value, EASY).valid is False  # type: ignore[arg-type]


def test_user_codebook_without_none_and_with_keywords():
    cb = Codebook(task="t", text_column="text", none=None, categories=[
        Category(short="method", name="Method described", keywords=["methodology"]),
        Category(short="data_shared", name="Data shared"),
    ])
    assert parse_answer("Methodology: \"...\"", cb).labels == (1, 0)
    assert parse_answer("data shared", cb).labels == (0, 1)
    assert parse_answer("[]", cb) == Parsed((0, 0), True, False, "json-numbers")  # no none rule to apply
    assert parse_answer("[1, 1]", cb).labels == (1, 1)  # exactly n 0/1 entries: one-hot


# ------------------------------------------------------------------ canonical format


@pytest.mark.parametrize("variant", VARIANTS)
@pytest.mark.parametrize("vector", [(1, 0, 1, 0, 0), (0, 0, 0, 0, 1), (1, 1, 1, 1, 0), (0, 0, 0, 1, 0)])
def test_render_roundtrip(variant, vector):
    text = render_answer(vector, EASY, variant)
    assert is_exact_format(text, EASY, variant)
    assert parse_answer(text, EASY) == Parsed(vector, True, False, parse_answer(text, EASY).method)


def test_render_formats():
    assert render_answer([1, 0, 1, 0, 0], EASY, "icl") == "[1, 3]"
    assert render_answer([0, 0, 0, 0, 0], EASY, "guidelines") == "[5]"  # the none policy first
    assert json.loads(render_answer([0, 1, 0, 0, 0], DIFF, "structured")) == {
        "algorithm": False, "nuance": True, "documentation": False, "math": False, "none": False}
    assert list(json.loads(render_answer([0, 1, 0, 0, 0], DIFF, "structured"))) == DIFF.shorts
    with pytest.raises(ValueError):
        render_answer([1, 0, 0, 0, 0], EASY, "nonsense")


@pytest.mark.parametrize(
    "text, variant, ok",
    [
        ("[1, 3]", "icl", True),
        ("[5]\n", "guidelines", True),
        ("[1, 5]", "icl", True),  # in format; the none policy is a separate repair
        ("[]", "icl", False),
        ("[1, 1]", "icl", False),
        ("[6]", "icl", False),
        ("[true]", "icl", False),
        ("1, 3", "icl", False),
        ("```json\n[1, 3]\n```", "icl", False),
        ("Answer: [1, 3]", "guidelines", False),
        ('["code"]', "icl", False),
        ("[1, 0, 1, 0, 0]", "icl", False),
        ('{"code": true, "artifacts": false, "readability": true, "setup": false, "none": false}',
         "structured", True),
        ('{ "code": true,\n  "artifacts": false, "readability": true, "setup": false, "none": false }',
         "structured", True),
        ('{"artifacts": false, "code": true, "readability": true, "setup": false, "none": false}',  # order
         "structured", False),
        ('{"code": true, "artifacts": false, "readability": true, "setup": false}', "structured", False),
        ('{"code": "yes", "artifacts": false, "readability": true, "setup": false, "none": false}',
         "structured", False),
        ('{"code": true, "code": true, "artifacts": false, "readability": true, "setup": false, '
         '"none": false}', "structured", False),
        ("[1, 3]", "structured", False),
    ],
)
def test_is_exact_format(text, variant, ok):
    assert is_exact_format(text, EASY, variant) is ok


# ------------------------------------------------------------------ real answers


def _annotator_pairs(data_dir):
    pairs = []
    for path in sorted((data_dir / "labels").glob("annotator_*.jsonl")):
        for line in path.read_text(encoding="utf-8").splitlines():
            if line.strip():
                r = json.loads(line)
                pairs.append((r["task"], r["response"], tuple(r["labels"])))
    return pairs


def test_annotator_responses_recovered(data_dir):
    pairs = _annotator_pairs(data_dir)
    assert len(pairs) == 420
    exact = sum(parse_answer(resp, BOOKS[task]).labels == want for task, resp, want in pairs)
    rate = exact / len(pairs)
    print(f"parser exact recovery on the annotator pairs: {exact}/{len(pairs)} = {rate:.3f}")
    assert rate >= 0.95


def test_seed_format_responses(data_dir):
    checked = 0
    for path in sorted((FIXTURE_DATA / "seed_formats").glob("*_effortly_labels_*.csv")):
        with path.open(encoding="utf-8", newline="") as fh:
            rows = list(csv.DictReader(fh))
        cols = rows[0].keys()
        for prefix, task in (("easy_", "easy"), ("diff_", "difficult")):
            resp_col = next(c for c in cols if c.startswith(prefix) and c.endswith("_response"))
            label_col = next(c for c in cols if c != resp_col and prefix.rstrip("_") in c
                             and ("label" in c or c.startswith("y_")))
            for row in rows:
                got = parse_answer(row[resp_col], BOOKS[task])
                assert got.labels == tuple(json.loads(row[label_col])), (path.name, resp_col, row[resp_col])
                checked += 1
    assert checked >= 18


# ------------------------------------------------------------------ fuzzing

# Each arbitrary string is also fed wrapped in the shapes the parser looks for (JSON list, object,
# object, tag, a head before a colon), so the structured paths see garbage too.
_WRAPS = ("{}", "[1, {}]", 'Answer: <label>{"code": {}, "none": {}}</label>')


def _check(got: Parsed, cb: Codebook) -> None:
    if got.labels is None:
        assert got.valid is False and got.repaired is False
    else:
        assert got.valid is True
        assert len(got.labels) == cb.n and set(got.labels) <= {0, 1}
        assert is_valid(got.labels, cb.none_index)


@settings(max_examples=10_000, deadline=None, database=None, suppress_health_check=list(HealthCheck))
@given(text=st.text(max_size=200), task=st.sampled_from(["easy", "difficult"]))
def test_fuzz_never_raises(text, task):
    cb = BOOKS[task]
    for wrap in _WRAPS:
        _check(parse_answer(wrap.replace("{}", text), cb), cb)
