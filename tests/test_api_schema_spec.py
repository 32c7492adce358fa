"""The --schema mini-language: parsed safely (no eval) into pydantic models."""

from __future__ import annotations

import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from llmscisci.errors import UserError
from llmscisci.prompts.schema_spec import is_list_spec, parse_schema_spec


def test_list_of_objects():
    m = parse_schema_spec('[{"fact": str, "category": str}]')
    assert is_list_spec(m)
    obj = m.model_validate_json('{"items": [{"fact": "a", "category": "b"}]}')
    assert obj.model_dump(by_alias=True) == {"items": [{"fact": "a", "category": "b"}]}
    with pytest.raises(Exception):
        m.model_validate_json('{"items": [{"fact": "a"}]}')  # all fields required


def test_nested_types_and_names():
    m = parse_schema_spec("{'title': str, 'year': int, 'score': float, 'ok': bool, 'tags': list, "
                          "'meta': dict, 'authors': [{'name': str, 'json': int}], 'ids': list[int], "
                          "'counts': dict[str, int], 'venue': {'name': string, 'rank': integer}}")
    schema = m.model_json_schema()
    props = schema["properties"]
    assert list(props) == ["title", "year", "score", "ok", "tags", "meta", "authors", "ids", "counts", "venue"]
    assert props["year"]["type"] == "integer" and props["score"]["type"] == "number"
    assert props["tags"] == {"items": {"type": "string"}, "title": "tags", "type": "array"}
    assert props["counts"]["additionalProperties"] == {"type": "integer"}
    data = {"title": "t", "year": 2020, "score": 0.5, "ok": True, "tags": ["x"], "meta": {"k": "v"},
            "authors": [{"name": "A", "json": 1}], "ids": [1, 2], "counts": {"a": 1},
            "venue": {"name": "JCDL", "rank": 1}}
    assert m.model_validate_json(json.dumps(data)).model_dump(by_alias=True) == data
    assert schema["additionalProperties"] is False


@pytest.mark.parametrize("bad", [
    '__import__("os").system("echo pwned")',
    '{"a": __import__("os")}',
    '{"a": str.upper}',
    '{"a": (lambda: 1)()}',
    '{"a": open}',
    '{"a": 1}',
    '{"a": "str"}',
    '{"a": str, "a": int}',
    '{}',
    '[str]',
    '[{"a": str}, {"b": int}]',
    '{"a": [str, int]}',
    '{"a": dict[int, str]}',
    '{1: str}',
    '{"_private": str}',
    '{**x}',
    '{"a": str if 1 else int}',
    '{"a": str | int}',
    '{',
    '',
    '   ',
    "{'a': " * 30 + "str" + "}" * 30,
    "x" * 6000,
])
def test_bad_schemas_are_one_line_user_errors(bad):
    with pytest.raises(UserError) as err:
        parse_schema_spec(bad)
    msg = str(err.value)
    assert msg.startswith("bad --schema") and "\n" not in msg


def test_nothing_is_evaluated(monkeypatch):
    import builtins

    def trap(*a, **k):
        raise AssertionError("evaluated")

    monkeypatch.setattr(builtins, "eval", trap)
    monkeypatch.setattr(builtins, "exec", trap)
    assert parse_schema_spec('{"a": str}').model_json_schema()["properties"]["a"]["type"] == "string"


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=80))
def test_any_text_parses_or_fails_cleanly(text):
    try:
        parse_schema_spec(text)
    except UserError:
        pass
