"""Codebooks: a labelling task as data (TOML): text column, ordered categories, the exclusive `none`,
and optionally the system prompt's domain and persona. Unknown keys are errors (with a did-you-mean)."""

from __future__ import annotations

import difflib
import hashlib
import tomllib
from functools import cached_property
from importlib import resources
from pathlib import Path

from pydantic import BaseModel, Field, ValidationError, model_serializer, model_validator

from llmscisci.data.textio import read_text
from llmscisci.errors import UserError

BUILTIN = ("easy", "difficult")


class Category(BaseModel):
    short: str = Field(pattern=r"^[a-z][a-z0-9_]*$")
    name: str
    description: str = ""
    keywords: list[str] = []

    model_config = {"extra": "forbid"}


class Codebook(BaseModel):
    task: str
    text_column: str = ""  # optional: `--text-column`/`--text`, or a corpus column `text` or `abstract`
    title: str = ""
    question: str = ""
    none: str | None = "none"
    categories: list[Category]
    numbering: dict[str, list[str]] = Field(default_factory=dict)
    # The system prompt's framing: `domain` names the kind of text ("machine-learning reproducibility
    # reports"), `persona` is the prompt's opening sentence. Unset: the study's for the built-in tasks, a
    # neutral one naming the codebook's title for any other (prompts/label.py).
    domain: str = ""
    persona: str = ""
    source: str = "builtin"

    model_config = {"frozen": True, "arbitrary_types_allowed": True, "extra": "forbid"}

    @model_serializer(mode="wrap")
    def _dump(self, handler):
        """Unset framing fields are left out, so a run's recorded codebook (and its hash) stays as before."""
        out = handler(self)
        for key in ("domain", "persona"):
            if isinstance(out, dict) and not out.get(key):
                out.pop(key, None)
        return out

    @model_validator(mode="after")
    def _check(self) -> "Codebook":
        shorts = [c.short for c in self.categories]
        if len(shorts) < 1:
            raise ValueError("a codebook needs at least one category")
        if len(set(shorts)) != len(shorts):
            raise ValueError(f"duplicate category short names: {shorts}")
        if self.none is not None and self.none not in shorts:
            raise ValueError(f"none category {self.none!r} is not among the categories {shorts}")
        for scheme, order in self.numbering.items():
            unknown = [s for s in order if s not in shorts]
            if unknown:
                raise ValueError(f"numbering {scheme!r} names unknown categories {unknown}")
        return self

    @property
    def n(self) -> int:
        return len(self.categories)

    @cached_property
    def shorts(self) -> list[str]:
        return [c.short for c in self.categories]

    def columns(self, prefix: str, vector) -> dict:
        """A label vector as one CSV column per category (`{prefix}_{short}`); None values when missing."""
        return {f"{prefix}_{s}": None if vector is None else vector[j] for j, s in enumerate(self.shorts)}

    @cached_property
    def names(self) -> list[str]:
        return [c.name for c in self.categories]

    @property
    def none_index(self) -> int | None:
        return None if self.none is None else self.shorts.index(self.none)

    def index(self, short: str) -> int:
        return self.shorts.index(short)

    def names_of(self, vector) -> list[str]:
        """Short names of the categories set in a label vector."""
        return [s for s, v in zip(self.shorts, vector) if v]

    def vector_from_numbers(self, numbers: list[int], scheme: str) -> list[int]:
        """Map 1-based class numbers of a named numbering scheme to a label vector (by name)."""
        if scheme not in self.numbering:
            known = ", ".join(sorted(self.numbering)) or "none"
            raise UserError(f"codebook {self.task!r} has no numbering scheme {scheme!r} (known: {known})")
        order = self.numbering[scheme]
        vec = [0] * self.n
        for k in numbers:
            if not 1 <= k <= len(order):
                raise ValueError(f"class number {k} outside 1..{len(order)} of scheme {scheme!r}")
            vec[self.index(order[k - 1])] = 1
        return vec


def load_codebook(spec: str | Path) -> Codebook:
    """A built-in codebook by name (`easy`, `difficult`) or a TOML file path (TOML files are UTF-8)."""
    spec_s = str(spec)
    if spec_s in BUILTIN:
        text = resources.files("llmscisci.data").joinpath("codebooks", f"{spec_s}.toml").read_text("utf-8")
        source = "builtin"
    else:
        path = Path(spec_s)
        if not path.is_file():
            if path.suffix.lower() == ".toml" or len(path.parts) > 1 or path.exists():
                raise UserError(f"file not found: {spec_s} (the codebook given with --task)")
            raise UserError(f"unknown task {spec_s!r}: use one of {', '.join(BUILTIN)} or a codebook .toml file")
        text = read_text(path, hint="a codebook is TOML, which must be UTF-8: save the file as UTF-8")
        source = str(path.resolve())  # absolute: a run's recorded codebook is found from any folder
    try:
        raw = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise UserError(f"codebook {spec_s}: invalid TOML ({exc})") from None
    if "source" in raw:
        raise UserError(f"codebook {spec_s}: 'source' is set by the toolkit (where the codebook was read from); "
                        "remove it")
    try:
        return Codebook(**raw, source=source)
    except ValidationError as exc:
        raise UserError(f"codebook {spec_s}: {_explain(exc.errors()[0])}") from None


def codebook_file(codebook: Codebook) -> dict | None:
    """Where a codebook of one's own was read from, as `{"path": absolute path, "sha256": of the file as it
    is now}`, so a later step finds it from any folder and notices an edit; None for a built-in task."""
    if codebook.source == "builtin":
        return None
    path = Path(codebook.source).resolve()
    sha = hashlib.sha256(path.read_bytes()).hexdigest() if path.is_file() else None
    return {"path": str(path), "sha256": sha}


def check_codebook_file(record: dict, what: str) -> Codebook:
    """The codebook a recorded `codebook_file` names, refused (one line) when the file is gone or edited."""
    path = Path(record["path"])
    if not path.is_file():
        raise UserError(f"{what}: its codebook {path} is not found (moved?); pass --task PATH_TO_CODEBOOK.toml")
    now = hashlib.sha256(path.read_bytes()).hexdigest()
    if record.get("sha256") and now != record["sha256"]:
        raise UserError(f"{what}: its codebook {path} changed since it was recorded (sha256 "
                        f"{record['sha256'][:12]} -> {now[:12]}); "
                        f"pass --task {path} to use it as it is now")
    return load_codebook(path)


def _explain(error: dict) -> str:
    """One validation error as `location: message`; an unknown key names its closest known key."""
    loc = [str(x) for x in error["loc"]]
    where = ".".join(loc)
    if error["type"] != "extra_forbidden":
        return f"{where}: {error['msg']}"
    model = Category if len(loc) >= 3 and loc[0] == "categories" else Codebook
    known = [k for k in model.model_fields if k != "source"]
    close = difflib.get_close_matches(loc[-1], known, n=1, cutoff=0.6)
    hint = f" (did you mean {close[0]!r}?)" if close else f" (known keys: {', '.join(known)})"
    return f"unknown key {loc[-1]!r}" + (f" in {'.'.join(loc[:-1])}" if len(loc) > 1 else "") + hint
