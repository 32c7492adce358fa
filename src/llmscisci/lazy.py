"""Lazy package faces: a package lists its public names and the module that defines each; a name is
imported on first use, so importing the package stays cheap (no torch/transformers at import time)."""

from __future__ import annotations

import importlib
from collections.abc import Callable
from typing import Any


def lazy_exports(package: str, exports: dict[str, str]) -> tuple[list[str], Callable[[str], Any], Callable[[], list[str]]]:
    """`__all__`, `__getattr__` and `__dir__` for `package`, whose public `name` lives in
    `package.exports[name]`. Use: `__all__, __getattr__, __dir__ = lazy_exports(__name__, {...})`."""
    names = sorted(exports)

    def __getattr__(name: str) -> Any:
        if name in exports:
            module = importlib.import_module(f"{package}.{exports[name]}")
            value = getattr(module, name)
            setattr(importlib.import_module(package), name, value)
            return value
        raise AttributeError(f"module {package!r} has no attribute {name!r}")

    def __dir__() -> list[str]:
        return sorted(set(vars(importlib.import_module(package))) | set(names))

    return names, __getattr__, __dir__
