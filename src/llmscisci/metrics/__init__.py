"""Metrics: multi-label scores, agreement between coders, statistics (bootstrap, McNemar), the judge
audit and the prevalence estimators. Pure functions of arrays and records.
"""

from __future__ import annotations

from llmscisci.lazy import lazy_exports

# public name -> the module (in this package) that defines it
_EXPORTS = {
    "evaluate": "evaluate",
    "format_table": "evaluate",
    "scores": "multilabel",
    "subset_accuracy": "multilabel",
    "micro_f1": "multilabel",
    "macro_f1": "multilabel",
    "Stat": "agreement",
    "agreement_report": "agreement",
    "cohen_kappa": "agreement",
    "fleiss_kappa": "agreement",
    "krippendorff_alpha": "agreement",
    "JudgedOrder": "judge_audit",
    "audit": "judge_audit",
    "exact_score": "judge_audit",
    "cluster_bootstrap": "stats",
    "headline_metrics": "stats",
    "mcnemar_exact_match": "stats",
    "paired_bootstrap": "stats",
    "Estimate": "prevalence",
    "prevalence": "prevalence",
}
__all__, __getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
