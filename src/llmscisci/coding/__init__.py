"""Human coding round trip: draw a sample of a label run's items for people to code, export it as a
CSV sheet (+ a sheet explaining every column) and as Label Studio tasks (+ a labelling config made from
the codebook), and import the coded sheet or a Label Studio export back as label files.

Sampling designs (every item's inclusion probability is known and recorded, so the prevalence
estimators stay valid whatever the design; see metrics/prevalence.py):

* ``random``        simple random sample of n items, pi = n / N.
* ``stratified``    strata = edition x the item's rarest predicted category (``invalid`` for an invalid
  output); square-root allocation (a stratum of size N_h gets about n sqrt(N_h) / sum sqrt(N_h') items,
  at most N_h), so rare predicted categories are coded more often than in proportion. Drawn by
  systematic sampling through the items sorted by stratum (random order within), which gives every
  stratum the floor or the ceiling of its allocation and every item exactly its pi.
* ``disagreement``  several run folders (models or prompt variants) label the same items; an item's
  disagreement is the share of its label positions the runs split on (Gini 4p(1-p), an invalid
  output counting as full disagreement). Items are drawn with probability proportional to
  FLOOR + disagreement (capped at 1: the most disputed items are certain to be drawn), by randomized
  systematic sampling. Every item keeps a chance to be drawn, so the sample still supports
  design-based estimates of the whole corpus.

The coder sheet never shows the model's labels or the stratum (they would anchor the coders); its
rows are shuffled. Imported codes go through the data layer's validator (one-line errors naming
file, row and column) and are stored as annotator-format JSONL (doi, task, labels, coder,
sampling_prob), one file per coder, which every command that reads label files accepts.
"""

from llmscisci.coding.design import (
                                     DEFAULT_SEED,
                                     FLOOR,
                                     INVALID,
                                     STRATEGIES,
                                     Sample,
                                     SampleRow,
                                     disagreement,
                                     draw_sample,
                                     pps_probabilities,
                                     stratified_probabilities,
                                     stratum_keys,
                                     systematic_sample,
)
from llmscisci.coding.export import (
                                     check_export_target,
                                     codebook_csv,
                                     export_paths,
                                     labelstudio_config,
                                     labelstudio_tasks,
                                     sheet_csv,
                                     write_export,
)
from llmscisci.coding.gold import Gold, load_gold
from llmscisci.coding.importing import (
                                     CodedRecord,
                                     Imported,
                                     import_coded,
                                     output_paths,
                                     read_coded_csv,
                                     read_labelstudio,
                                     sample_design,
                                     write_coded,
)
from llmscisci.coding.prevalence import CorpusPrevalence, corpus_prevalence
from llmscisci.coding.runs import LoadedRun, load_run

__all__ = ["CodedRecord", "CorpusPrevalence", "corpus_prevalence", "DEFAULT_SEED", "FLOOR", "Gold", "INVALID", "Imported", "LoadedRun", "STRATEGIES", "Sample",
           "SampleRow", "check_export_target", "codebook_csv", "disagreement", "draw_sample", "export_paths",
           "import_coded", "labelstudio_config", "labelstudio_tasks", "load_gold", "load_run", "output_paths",
           "pps_probabilities", "read_coded_csv", "read_labelstudio", "sample_design", "sheet_csv",
           "stratified_probabilities",
           "stratum_keys", "systematic_sample", "write_coded", "write_export"]
