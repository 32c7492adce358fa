"""Prompts: templates in TOML next to the modules that render them (label, judge, extract and the
chain-of-thought format); each module's `prompt_hash` enters the run's configuration hash.
"""

from __future__ import annotations

from llmscisci.lazy import lazy_exports

# public name -> the module (in this package) that defines it
_EXPORTS = {
    "build_messages": "label",
    "check_variant": "label",
    "label_schema": "label",
    "judge_schema": "judge",
}
__all__, __getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
