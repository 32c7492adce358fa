"""Parse the `--schema` mini-language into a pydantic model, safely (no eval).

Grammar (a Python-literal-like expression; only these forms are accepted):

    spec   := object | "[" object "]"
    object := "{" key ":" value ("," key ":" value)* [","] "}"      key: a quoted string
    value  := str | int | float | bool | list | dict                 (bare list = list of str,
            | object                                                  bare dict = str -> str mapping)
            | "[" value "]" | "list[" value "]" | "dict[str, " value "]"

JSON-schema names are accepted too (string, integer, number, boolean, array, object).
Example: '[{"fact": str, "category": str}]' or '{"title": str, "authors": [{"name": str}], "year": int}'.

The text is parsed with ast.parse and every node is checked against this whitelist; nothing is ever
evaluated, so names other than the type names, calls, attributes, operators... are rejected.
A top-level list becomes an object with one field, "items" (structured-output APIs want an object).
"""

from __future__ import annotations

import ast
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, create_model

from llmscisci.errors import UserError

MAX_CHARS = 5000
MAX_DEPTH = 8
MAX_FIELDS = 200
LIST_FIELD = "items"

SCALARS: dict[str, type] = {
    "str": str, "string": str,
    "int": int, "integer": int,
    "float": float, "number": float,
    "bool": bool, "boolean": bool,
}
CONTAINERS = {"list", "array", "dict", "object"}


class _Builder:
    def __init__(self) -> None:
        self.n_fields = 0
        self.n_models = 0

    def fail(self, node: ast.AST | None, why: str):
        where = f" (column {node.col_offset + 1})" if node is not None and hasattr(node, "col_offset") else ""
        raise UserError(f"bad --schema: {why}{where}")

    def value(self, node: ast.AST, name: str, depth: int) -> Any:
        if depth > MAX_DEPTH:
            self.fail(node, f"nested deeper than {MAX_DEPTH} levels")
        if isinstance(node, ast.Name):
            if node.id in SCALARS:
                return SCALARS[node.id]
            if node.id in ("list", "array"):
                return list[str]
            if node.id in ("dict", "object"):
                return dict[str, str]
            self.fail(node, f"unknown type {node.id!r} (use str, int, float, bool, list, dict or a nested {{...}})")
        if isinstance(node, ast.Dict):
            return self.obj(node, name, depth + 1)
        if isinstance(node, ast.List):
            if len(node.elts) != 1:
                self.fail(node, "a list type has exactly one element type, e.g. [str] or [{\"name\": str}]")
            return list[self.value(node.elts[0], name, depth + 1)]  # type: ignore[misc]
        if isinstance(node, ast.Subscript) and isinstance(node.value, ast.Name):
            base = node.value.id
            if base in ("list", "array"):
                return list[self.value(node.slice, name, depth + 1)]  # type: ignore[misc]
            if base in ("dict", "object"):
                sl = node.slice
                if not (isinstance(sl, ast.Tuple) and len(sl.elts) == 2 and isinstance(sl.elts[0], ast.Name)
                        and sl.elts[0].id in ("str", "string")):
                    self.fail(node, "a mapping type is dict[str, TYPE]")
                return dict[str, self.value(sl.elts[1], name, depth + 1)]  # type: ignore[misc]
        if isinstance(node, ast.Constant):
            self.fail(node, f"{node.value!r} is a value, not a type (write str, int, float or bool)")
        self.fail(node, f"{type(node).__name__} is not allowed (only types, {{...}} and [...])")

    def obj(self, node: ast.Dict, name: str, depth: int) -> type[BaseModel]:
        if not node.keys:
            self.fail(node, "an object needs at least one field")
        fields: dict[str, Any] = {}
        seen: set[str] = set()
        for i, (k, v) in enumerate(zip(node.keys, node.values)):
            if k is None:
                self.fail(v, "'**' is not allowed")
            if not (isinstance(k, ast.Constant) and isinstance(k.value, str)):
                self.fail(k, "field names must be quoted strings")
            key = k.value.strip()
            if not key or len(key) > 64 or key.startswith("_"):
                self.fail(k, f"bad field name {k.value!r} (1-64 characters, not starting with '_')")
            if key in seen:
                self.fail(k, f"duplicate field {key!r}")
            seen.add(key)
            self.n_fields += 1
            if self.n_fields > MAX_FIELDS:
                self.fail(k, f"more than {MAX_FIELDS} fields")
            typ = self.value(v, f"{name}_{_ident(key)}", depth)
            fields[f"f{i}"] = (typ, Field(..., alias=key, title=key))
        self.n_models += 1
        return create_model(name, __config__=ConfigDict(extra="forbid", populate_by_name=True), **fields)


def _ident(text: str) -> str:
    out = "".join(c if c.isalnum() else "_" for c in text)
    return out[:1].upper() + out[1:] if out else "Field"


def parse_schema_spec(text: str, name: str = "Answer") -> type[BaseModel]:
    """The pydantic model described by `text`; UserError (one line) for anything else."""
    if not isinstance(text, str) or not text.strip():
        raise UserError("bad --schema: empty")
    if len(text) > MAX_CHARS:
        raise UserError(f"bad --schema: longer than {MAX_CHARS} characters")
    try:
        tree = ast.parse(text.strip(), mode="eval")
    except SyntaxError as exc:
        raise UserError(f"bad --schema: not a valid expression ({exc.msg}, column {exc.offset})") from None
    except (ValueError, RecursionError, MemoryError):
        raise UserError("bad --schema: cannot be parsed") from None
    b = _Builder()
    root = tree.body
    try:
        if isinstance(root, ast.Dict):
            return b.obj(root, name, 1)
        if isinstance(root, ast.List):
            if len(root.elts) != 1 or not isinstance(root.elts[0], ast.Dict):
                b.fail(root, "a top-level list holds exactly one {...} object type")
            item = b.obj(root.elts[0], f"{name}Item", 2)
            return create_model(name, __config__=ConfigDict(extra="forbid"), **{LIST_FIELD: (list[item], ...)})
        b.fail(root, "the schema must be a {...} object or a [{...}] list of objects")
    except RecursionError:
        raise UserError("bad --schema: nested too deeply") from None
    raise AssertionError("unreachable")


def is_list_spec(model: type[BaseModel]) -> bool:
    return list(model.model_fields) == [LIST_FIELD]
