"""llmscisci: large language models for scientometrics.

The package reads as its pipeline: data -> prompts -> backends -> tasks -> metrics -> train -> report -> cli.
"""

__version__ = "0.1.0"
