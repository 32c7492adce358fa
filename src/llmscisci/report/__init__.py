"""Reports of run folders, grids and training folders: one self-contained HTML file and a Markdown twin."""

from llmscisci.report.write import Written, write_report

__all__ = ["Written", "write_report"]
