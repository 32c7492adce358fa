"""Codebooks from Python: `ls.load_codebook("easy")` (a built-in name or a .toml file) and
`ls.Codebook(task=..., text_column=..., categories=[ls.Category(short=..., name=...), ...])` built in
code, usable as `task=` of every call (recorded with the source `python`)."""

from __future__ import annotations

from llmscisci.data.codebook import Category, Codebook, load_codebook

__all__ = ["Category", "Codebook", "load_codebook"]
