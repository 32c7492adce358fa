"""`python -m llmscisci`: the same command as `llmscisci`."""

from llmscisci.cli import main

main()
