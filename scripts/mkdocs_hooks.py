"""MkDocs hook: the site's home page is README.md itself (its `docs/` links made relative to the site),
so the README and the site's front page cannot drift apart; docs/index.md is only a placeholder."""

from __future__ import annotations

import re
from pathlib import Path


def on_page_read_source(page, config):
    if page.file.src_uri != "index.md":
        return None
    readme = Path(config["config_file_path"]).parent / "README.md"
    return re.sub(r"\]\(docs/", "](", readme.read_text(encoding="utf-8"))
