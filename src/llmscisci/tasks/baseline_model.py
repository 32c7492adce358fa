"""A fitted baseline classifier saved as plain data, and loaded back to label a new corpus.

`save_model(DIR, ...)` fits TF-IDF (or sentence embeddings) + one logistic regression per category on
all given items and writes DIR/model.json (method, codebook categories, versions, CV scores, the
SHA-256 of each data file) and plain arrays: arrays.npz (idf weights, coefficients, intercepts, the
value of categories that were constant in training) and, for TF-IDF, vocabulary.json. For
`embed-logreg` the folder names the embedding model and the hash of its files, never its weights; for
`llm-states` it names the language model whose hidden states are the features (and the hash of its
files), which labelling loads to embed new texts. A classifier fitted on a labelling run's predictions
(distillation) records that run in `taught_by` (path, config hash, labels' hash, items).

Nothing is unpickled: arrays load with `allow_pickle=False`, the vocabulary is JSON, and the types a
manifest names must be in the fixed allow-list below (the estimators are rebuilt by this code, never
from a type named by the file). A manifest that names anything else, or files whose hashes do not
match, fails with a one-line error before anything is used.
"""

from __future__ import annotations

import hashlib
import json
from importlib import metadata
from pathlib import Path

import numpy as np

from llmscisci.data.codebook import Codebook
from llmscisci.data.validate import apply_none_rule
from llmscisci.errors import UserError
from llmscisci.runs import atomic_folder
from llmscisci.tasks.baseline import EMBED_MODEL, embed_texts, embedding_model_path
from llmscisci.tasks.label_spec import Classifier

FORMAT = "llmscisci-baseline-model/1"
SAVABLE = ("tfidf-logreg", "embed-logreg", "llm-states")
# role -> the only type names a manifest may carry for it (checked as exact strings, never imported)
ALLOWED_TYPES = {
    "tfidf-logreg": {"features": "sklearn.feature_extraction.text.TfidfVectorizer",
                     "classifier": "sklearn.linear_model.LogisticRegression"},
    "embed-logreg": {"features": "sentence_transformers.SentenceTransformer",
                     "classifier": "sklearn.linear_model.LogisticRegression"},
    "llm-states": {"features": "transformers.AutoModelForCausalLM",
                   "classifier": "sklearn.linear_model.LogisticRegression"},
}
TFIDF_PARAMS = {"ngram_range": [1, 2], "sublinear_tf": True, "min_df": 1}
ARRAYS = {"coef": 2, "intercept": 1, "constant": 1}  # name -> ndim (+ "idf": 1 for TF-IDF)


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def embedding_model_hash() -> str:
    """SHA-256 over the embedding model's files (names and contents), so a different model is noticed."""
    root = Path(embedding_model_path())
    if not root.is_dir():
        return "unavailable"
    h = hashlib.sha256()
    for p in sorted(q for q in root.rglob("*") if q.is_file()):
        h.update(str(p.relative_to(root)).encode() + b"\0" + sha256_file(p).encode())
    return h.hexdigest()


def _features(method: str, texts: list[str], states=None):
    if method == "llm-states":
        return None, states.embed(texts)
    if method == "tfidf-logreg":
        from sklearn.feature_extraction.text import TfidfVectorizer

        vec = TfidfVectorizer(ngram_range=tuple(TFIDF_PARAMS["ngram_range"]), min_df=TFIDF_PARAMS["min_df"],
                              sublinear_tf=TFIDF_PARAMS["sublinear_tf"])
        return vec, vec.fit_transform(texts)
    return None, embed_texts(texts)


def save_model(folder: str | Path, method: str, codebook: Codebook, texts: list[str], y: np.ndarray, seed: int,
               cv: dict | None = None, states=None, teacher: dict | None = None,
               train_ids: list[str] | None = None) -> Path:
    """Fit on all (texts, y) and write the model folder exactly at `folder` (created, or replaced whole).
    `states`: the StatesEmbedder of `llm-states`; `teacher`: the labelling run that gave the labels;
    `train_ids`: the items' ids, so a run that scores the classifier on its own training items says so."""
    from sklearn.linear_model import LogisticRegression

    if method not in SAVABLE:
        raise UserError(f"--save works with {' or '.join(SAVABLE)}, not {method!r}")
    folder = Path(folder)
    if folder.exists() and not (folder / "model.json").is_file():
        if not folder.is_dir() or any(folder.iterdir()):
            raise UserError(f"--save {folder}: exists and is not a model folder; choose a new path")
    if method == "llm-states" and states is None:
        from llmscisci.paths import cache_dir
        from llmscisci.tasks.llm_states import CACHE_NAME, StatesEmbedder

        states = StatesEmbedder(cache_root=cache_dir() / CACHE_NAME)
    vec, x = _features(method, texts, states)
    n, dim = codebook.n, x.shape[1]
    coef = np.zeros((n, dim), dtype=np.float64)
    intercept = np.zeros(n, dtype=np.float64)
    constant = np.full(n, -1, dtype=np.int8)
    for j in range(n):
        col = y[:, j]
        if col.min() == col.max():
            constant[j] = int(col[0])
            continue
        clf = LogisticRegression(class_weight="balanced", max_iter=2000, random_state=seed).fit(x, col)
        coef[j], intercept[j] = clf.coef_[0], clf.intercept_[0]
    arrays = {"coef": coef, "intercept": intercept, "constant": constant}
    with atomic_folder(folder) as tmp:
        _write_model(tmp, arrays, vec, method, codebook, texts, seed, dim, cv, states, teacher, train_ids)
    return folder


def _write_model(tmp: Path, arrays: dict, vec, method: str, codebook: Codebook, texts, seed: int, dim: int,
                 cv: dict | None, states=None, teacher: dict | None = None, train_ids=None) -> None:
    files = {}
    if vec is not None:
        arrays["idf"] = vec.idf_.astype(np.float64)
        vocab = {term: int(i) for term, i in sorted(vec.vocabulary_.items(), key=lambda kv: kv[1])}
        (tmp / "vocabulary.json").write_text(json.dumps(vocab, ensure_ascii=False), encoding="utf-8")
        files["vocabulary.json"] = sha256_file(tmp / "vocabulary.json")
    np.savez(tmp / "arrays.npz", **arrays)
    files["arrays.npz"] = sha256_file(tmp / "arrays.npz")
    manifest = {
        "format": FORMAT, "method": method, "types": ALLOWED_TYPES[method],
        "task": codebook.task, "categories": codebook.shorts, "none": codebook.none,
        "n_train": int(len(texts)), "seed": seed, "dim": int(dim), "files": files,
        "cv": cv or {},
        "versions": {p: _version(p) for p in ("llmscisci", "scikit-learn", "numpy")},
    }
    if teacher:
        manifest["taught_by"] = teacher
    if train_ids is not None:
        manifest["train_ids"] = list(train_ids)
    if method == "tfidf-logreg":
        manifest["features"] = TFIDF_PARAMS
    elif method == "llm-states":
        manifest["features"] = states.features()
    else:
        manifest["features"] = {"embedding_model": EMBED_MODEL, "embedding_model_sha256": embedding_model_hash(),
                                "normalize": True}
    (tmp / "model.json").write_text(json.dumps(manifest, indent=2) + "\n", encoding="utf-8")


def _version(pkg: str) -> str | None:
    try:
        return metadata.version(pkg)
    except metadata.PackageNotFoundError:
        return None


class SavedClassifier(Classifier):
    """A loaded model folder: label vectors for texts (the `none` rule applied, as in the evaluation)."""

    def __init__(self, folder: Path, manifest: dict, arrays: dict[str, np.ndarray], vocabulary: dict | None):
        self.folder, self.manifest, self.arrays = folder, manifest, arrays
        self.method = manifest["method"]
        self.name = f"baseline:{self.method}"
        self.none_index = manifest["categories"].index(manifest["none"]) if manifest.get("none") else None
        self.train_ids = frozenset(manifest.get("train_ids") or ())
        self.vec = self.states = None
        if self.method == "llm-states":
            from llmscisci.paths import cache_dir
            from llmscisci.tasks.llm_states import CACHE_NAME, StatesEmbedder

            self.states = StatesEmbedder(manifest["features"]["states_model"], cache_dir() / CACHE_NAME)
            self.states._fingerprint = manifest["features"]["states_model_sha256"]  # checked by load_model
        if vocabulary is not None:
            from sklearn.feature_extraction.text import TfidfVectorizer

            p = manifest["features"]
            self.vec = TfidfVectorizer(ngram_range=tuple(p["ngram_range"]), min_df=p["min_df"],
                                       sublinear_tf=p["sublinear_tf"], vocabulary=vocabulary)
            self.vec.idf_ = arrays["idf"]

    def check_codebook(self, codebook: Codebook) -> None:
        if codebook.shorts != self.manifest["categories"]:
            raise UserError(f"{self.folder}: the model's categories {self.manifest['categories']} do not match "
                            f"the codebook's {codebook.shorts} (same short names, same order needed)")

    def describe(self) -> dict:
        return {"name": self.name, "folder": str(self.folder), "method": self.method,
                "model_sha256": {k: v for k, v in self.manifest["files"].items()},
                "features": self.manifest["features"], "context_length": None,
                **({"taught_by": self.manifest["taught_by"]} if self.manifest.get("taught_by") else {})}

    def predict_texts(self, texts: list[str]) -> list[list[int]]:
        if not texts:
            return []
        if self.vec is not None:
            x = self.vec.transform(texts)
        else:
            x = self.states.embed(texts) if self.states is not None else embed_texts(texts)
        scores = np.asarray(x @ self.arrays["coef"].T) + self.arrays["intercept"]
        pred = (scores > 0).astype(int)
        const = self.arrays["constant"]
        for j in np.flatnonzero(const >= 0):
            pred[:, j] = const[j]
        return [list(apply_none_rule(list(map(int, row)), self.none_index).labels) for row in pred]


def _fail(folder: Path, why: str) -> UserError:
    return UserError(f"{folder}: not a usable model folder: {why}")


def _check_states_model(folder: Path, feats) -> None:
    """The language model an llm-states classifier names must be here, with the same files."""
    from llmscisci.paths import cache_dir
    from llmscisci.tasks.llm_states import CACHE_NAME, SETTINGS, model_fingerprint

    if (not isinstance(feats, dict) or not isinstance(feats.get("states_model"), str)
            or {k: feats.get(k) for k in SETTINGS} != SETTINGS):
        raise _fail(folder, f"unsupported llm-states features {json.dumps(feats)[:200]}")
    try:
        have = model_fingerprint(feats["states_model"], cache_dir() / CACHE_NAME / "fingerprints.json")
    except UserError as exc:
        raise _fail(folder, f"its states model {feats['states_model']!r} cannot be found here ({exc})") from None
    if feats.get("states_model_sha256") != have:
        raise _fail(folder, f"the states model {feats['states_model']!r} here (sha256 {have[:12]}) is not the one "
                            "it was fitted with")


def load_model(folder: str | Path) -> SavedClassifier:
    """Load and check a model folder; every check runs before any array is used."""
    folder = Path(folder)
    mpath = folder / "model.json"
    if not mpath.is_file():
        raise _fail(folder, "no model.json")
    try:
        manifest = json.loads(mpath.read_text("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise _fail(folder, f"model.json is not valid JSON ({exc})") from None
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
        raise _fail(folder, f"model.json format is not {FORMAT!r}")
    method = manifest.get("method")
    if method not in SAVABLE:
        raise _fail(folder, f"unknown method {method!r}")
    types = manifest.get("types")
    if types != ALLOWED_TYPES[method]:
        named = types if not isinstance(types, dict) else {k: v for k, v in types.items()
                                                           if ALLOWED_TYPES[method].get(k) != v}
        raise _fail(folder, f"model.json names types outside the allow-list: {json.dumps(named)[:200]}")
    cats = manifest.get("categories")
    if not (isinstance(cats, list) and cats and all(isinstance(c, str) for c in cats)):
        raise _fail(folder, "categories must be a list of short names")
    if manifest.get("none") is not None and manifest["none"] not in cats:
        raise _fail(folder, "the none category is not among the categories")
    ids = manifest.get("train_ids")
    if ids is not None and not (isinstance(ids, list) and all(isinstance(i, str) for i in ids)):
        raise _fail(folder, "train_ids must be a list of item ids")
    feats = manifest.get("features")
    if method == "tfidf-logreg" and feats != TFIDF_PARAMS:
        raise _fail(folder, f"unsupported TF-IDF settings {json.dumps(feats)[:200]}")
    if method == "embed-logreg":
        if not isinstance(feats, dict) or feats.get("embedding_model") != EMBED_MODEL:
            raise _fail(folder, f"unsupported embedding model (only {EMBED_MODEL})")
        have = embedding_model_hash()
        if feats.get("embedding_model_sha256") != have:
            raise _fail(folder, f"the embedding model here (sha256 {have[:12]}) is not the one it was fitted with")
    files = manifest.get("files")
    expected = {"arrays.npz"} | ({"vocabulary.json"} if method == "tfidf-logreg" else set())
    if not isinstance(files, dict) or set(files) != expected:
        raise _fail(folder, f"files must be exactly {sorted(expected)}")
    for name, digest in files.items():
        p = folder / name
        if not p.is_file():
            raise _fail(folder, f"{name} is missing")
        if sha256_file(p) != digest:
            raise _fail(folder, f"{name} does not match its SHA-256 in model.json (changed after saving)")
    try:
        with np.load(folder / "arrays.npz", allow_pickle=False) as z:
            arrays = {k: z[k] for k in z.files}
    except (ValueError, OSError) as exc:
        raise _fail(folder, f"arrays.npz: {str(exc).splitlines()[0]}") from None
    need = dict(ARRAYS) | ({"idf": 1} if method == "tfidf-logreg" else {})
    if set(arrays) != set(need):
        raise _fail(folder, f"arrays.npz must hold exactly {sorted(need)}")
    n, dim = len(cats), manifest.get("dim")
    for k, nd in need.items():
        a = arrays[k]
        if a.dtype.kind not in "fiu" or a.ndim != nd:
            raise _fail(folder, f"arrays.npz: {k} must be a {nd}-d numeric array")
    if arrays["coef"].shape != (n, dim) or arrays["intercept"].shape != (n,) or arrays["constant"].shape != (n,):
        raise _fail(folder, "arrays.npz: shapes do not match the categories and dim")
    vocab = None
    if method == "tfidf-logreg":
        try:
            vocab = json.loads((folder / "vocabulary.json").read_text("utf-8"))
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise _fail(folder, f"vocabulary.json is not valid JSON ({exc})") from None
        if (not isinstance(vocab, dict) or len(vocab) != dim or arrays["idf"].shape != (dim,)
                or not all(isinstance(k, str) and isinstance(v, int) for k, v in vocab.items())
                or sorted(vocab.values()) != list(range(dim))):
            raise _fail(folder, "vocabulary.json must map each term to a distinct column 0..dim-1")
    if method == "llm-states":  # last: it hashes the language model's files
        _check_states_model(folder, feats)
    return SavedClassifier(folder, manifest, arrays, vocab)
