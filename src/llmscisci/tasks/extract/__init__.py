"""Bibliographic information extraction from a journal's HTML page, scored against a BibTeX key.

Pipeline, one module each: source (read a file or URL) -> html (blocks and units) -> prompts
(llmscisci/prompts/extract.toml) -> backend -> parse (answers to records, schema in schema.py) ->
truth (the bib, joined on DOI) + normalize -> score; baseline reads the page's own BibTeX; run writes
the run folder.
"""
