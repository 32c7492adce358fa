"""The test run's own cache: a temporary $XDG_CACHE_HOME, with the user's converted models linked in."""

from __future__ import annotations

import os
from pathlib import Path

from llmscisci.backends import embedded
from llmscisci.paths import cache_dir


def test_the_cache_is_a_temporary_folder_with_the_models_linked(_isolated_cache):
    assert Path(os.environ["XDG_CACHE_HOME"]) == _isolated_cache
    assert cache_dir() == _isolated_cache / "llmscisci"
    assert not str(cache_dir()).startswith(str(Path.home() / ".cache"))
    if not os.environ.get("LLMSCISCI_MODEL_CACHE"):
        link = _isolated_cache / "llmscisci" / "models"
        assert link.is_symlink() and embedded.models_root() == link
        # what is converted there lands in the user's models folder, kept for the next run
        assert link.resolve() != link and link.resolve().is_dir()
