"""Ingestion of ReScience MLRC LaTeX sources into the toolkit's data layout.

latex.py (LaTeX to text, reading a report's sources as one document), sections.py (the scope,
easy and difficult parts, short and long), metadata.py (metadata.yaml / metadata.tex), build.py
(over a checkout: CSV + ingestion log), log.py (the log's vocabulary), compare.py (an ingestion
against an existing CSV), checkdir.py (a whole data directory through the data layer's loaders).
"""
