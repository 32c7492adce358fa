"""llmscisci: large language models for scientometrics.

The package reads as its pipeline: data -> prompts -> backends -> tasks -> metrics -> train -> report -> cli.
From Python, `import llmscisci as ls` gives the API of `llmscisci.api` (`ls.label`, `ls.open_run`,
`ls.prevalence`, ...), loaded on first use: importing the package loads no torch.
"""

from __future__ import annotations

import importlib
import sys
import types

__version__ = "0.1.0"


def _api():
    return importlib.import_module("llmscisci.api")


def __getattr__(name: str):
    api = _api()
    if name in api.EXPORTS:
        # from the defining module, not the api package: importing the submodule `llmscisci.api.judge`
        # rebinds the package's attribute `judge` to that module
        value = getattr(importlib.import_module(f"llmscisci.api.{api.EXPORTS[name]}"), name)
        setattr(sys.modules[__name__], name, value)
        return value
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_api().EXPORTS))


class _Package(types.ModuleType):
    """`llmscisci.report` is the report subpackage and `ls.report(...)` the API function: the attribute
    stays the function when the subpackage is imported (`import llmscisci.report` still finds it)."""

    @property
    def report(self):
        return _api().report

    @report.setter
    def report(self, module) -> None:  # the import system binds the subpackage here: kept in sys.modules only
        pass


sys.modules[__name__].__class__ = _Package
