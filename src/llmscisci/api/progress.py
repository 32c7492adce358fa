"""Progress bars of API calls. The runners draw them with rich on the library's console, which in
Jupyter renders through the notebook's display (live bars need ipywidgets, as in Colab); where a kernel
has no ipywidgets the bars are left out rather than printed as raw terminal text."""

from __future__ import annotations

import importlib.util


def show_progress(progress: bool | None) -> bool:
    """Whether to draw progress bars: as asked, else yes unless in a notebook that cannot show them."""
    if progress is not None:
        return bool(progress)
    from llmscisci.console import console

    return not console.is_jupyter or importlib.util.find_spec("ipywidgets") is not None
