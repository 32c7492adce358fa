"""A user's codebook: unknown keys are errors with a did-you-mean, a non-UTF-8 file is one line, and the
codebook can frame the system prompt (domain, persona); the built-in tasks keep the study's framing."""

from __future__ import annotations

import pytest

from console import run_console
from llmscisci.data.codebook import load_codebook
from llmscisci.errors import UserError
from llmscisci.prompts.label import VARIANTS, system_prompt

BOOK = """task = "funding"
text_column = "abstract"
title = "Funding statement"
question = "Does the abstract name who funded the work?"
{extra}
[[categories]]
short = "named"
name = "Funder named"
description = "A funder is named."

[[categories]]
short = "none"
name = "No funder"
"""


def book(tmp_path, extra="", name="book.toml", encoding="utf-8"):
    p = tmp_path / name
    p.write_bytes(BOOK.format(extra=extra).encode(encoding))
    return p


def test_misspelled_key_names_it_with_a_suggestion(tmp_path):
    with pytest.raises(UserError) as exc:
        load_codebook(book(tmp_path, 'questoin = "x"'))
    assert "unknown key 'questoin'" in str(exc.value) and "did you mean 'question'" in str(exc.value)
    bad_cat = tmp_path / "cat.toml"
    bad_cat.write_text(BOOK.format(extra="").replace('description = "A funder is named."', 'descrption = "x"'))
    with pytest.raises(UserError, match=r"unknown key 'descrption' in categories.0 \(did you mean 'description'"):
        load_codebook(bad_cat)
    with pytest.raises(UserError, match="unknown key 'zzzzzz'.*known keys"):
        load_codebook(book(tmp_path, 'zzzzzz = 1'))


def test_latin1_codebook_is_one_line(tmp_path, capsys, monkeypatch):
    """It used to end in a 46-line traceback."""
    p = book(tmp_path, 'persona = "Vous étiquetez des résumés."', encoding="latin-1")
    code, _, err = run_console(["label", "--task", p, "--input", p, "--dry-run"], capsys, monkeypatch)
    assert code == 2 and "Traceback" not in err
    lines = [x for x in err.strip().splitlines() if x]
    assert len(lines) == 1 and "book.toml, line 5" in lines[0] and "not UTF-8" in lines[0], err


def test_builtin_tasks_keep_the_study_framing():
    for task in ("easy", "difficult"):
        for v in VARIANTS:
            assert system_prompt(load_codebook(task), v).startswith(
                "You label passages from machine-learning reproducibility reports.\n")


def test_custom_codebook_gets_a_neutral_or_its_own_framing(tmp_path):
    neutral = system_prompt(load_codebook(book(tmp_path)), "guidelines")
    assert neutral.startswith('You label passages for the task "Funding statement".\n'
                              "Does the abstract name who funded the work?")
    assert "reproducibility" not in neutral
    for k in (1, 3):
        assert "reproducibility" not in system_prompt(load_codebook(book(tmp_path)), "guidelines", paraphrase=k)
    own = load_codebook(book(tmp_path, 'domain = "grant abstracts"'))
    assert system_prompt(own, "icl").startswith("You label passages from grant abstracts.\n")
    assert "careful annotator of grant abstracts" in system_prompt(own, "icl", paraphrase=3)
    persona = load_codebook(book(tmp_path, 'persona = "You are a research-funding analyst."'))
    assert system_prompt(persona, "structured").startswith("You are a research-funding analyst.\n")


def test_framing_left_out_of_the_recorded_codebook_when_unset(tmp_path):
    assert "persona" not in load_codebook("easy").model_dump()
    assert load_codebook(book(tmp_path, 'domain = "grant abstracts"')).model_dump()["domain"] == "grant abstracts"
