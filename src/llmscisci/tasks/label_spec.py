"""What defines a labelling run and what it writes per item: the spec (its identity, its config.json), the
selection of the study's items and few-shot examples, and the prediction records (a model's answer, an
empty text's, a fitted classifier's). The runner (tasks/label_runner.py) builds on these.
"""

from __future__ import annotations

import json
import random
from collections.abc import Iterable
from dataclasses import dataclass, field

from llmscisci.backends.base import Backend, GenParams, Generation
from llmscisci.data.codebook import Codebook
from llmscisci.data.items import Item, text_sha, texts_fingerprint
from llmscisci.data.split import SPLIT_INFO
from llmscisci.data.validate import apply_none_rule
from llmscisci.errors import UserError
from llmscisci.metrics.distribution import GROUP_KEYS
from llmscisci.prompts import label as prompts
from llmscisci.records import LabelPrediction
from llmscisci.runs import slug, stable_hash
from llmscisci.tasks.parse import is_exact_format, parse_answer, render_answer
from llmscisci.tasks.texts import TEXTS_KEY

DEFAULT_MAX_NEW_TOKENS = {"icl": 48, "guidelines": 32, "structured": 64, "cot": 192, "score": 1}


@dataclass
class LabelSpec:
    """Everything that defines a labelling run (and so its hash), except where its output goes."""

    codebook: Codebook
    variant: str
    model: str
    params: GenParams = field(default_factory=GenParams)
    shots: int = 0
    limit: int | None = None
    split: str = "all"  # all | train | test
    data_source: str = ""
    paraphrase: int = 0  # wording of the system prompt: 0 = label.toml's, k = label_paraphrases.toml's k-th
    calibrate: str | None = None  # `score` variant: the source its thresholds are fitted on

    @classmethod
    def from_config(cls, cfg: dict) -> LabelSpec:
        """The spec a run's config.json records (study or corpus run): its core, so its hash, is the stored
        one (`--resume`, `batch collect`, a grid's started cell continue the run through it)."""
        return cls(codebook=Codebook(**cfg["codebook"]), variant=cfg["variant"], model=cfg["model"],
                   params=GenParams(**cfg["params"]), shots=cfg.get("shots", 0), limit=cfg.get("limit"),
                   split=cfg.get("split_filter", "all"), data_source=cfg.get("data_source", ""),
                   paraphrase=int(cfg.get("paraphrase") or 0), calibrate=cfg.get("calibrate"))

    def core_of(self, part: dict, shots: list[tuple[str, str]]) -> dict:
        """What defines the experiment: its stable hash names the run (and finds it again to resume).
        `part` is the item source's share of it (`items`, `shots`, `split_filter`, the texts' fingerprint)."""
        core = {
            "kind": "label",
            "task": self.codebook.task,
            "variant": self.variant,
            "model": self.model,
            "params": self.params.as_dict(),
            "limit": self.limit,
            "prompt_hash": prompts.prompt_hash(self.codebook, self.variant, shots, self.paraphrase),
            "codebook": self.codebook.model_dump(),
            **part,
        }
        if self.paraphrase:  # the original wording keeps the hashes of runs made before paraphrases existed
            core["paraphrase"] = self.paraphrase
        if self.calibrate:
            core["calibrate"] = self.calibrate
        return core

    def items_part(self, items: list[Item]) -> dict:
        """The core's share of a list of items: their ids and texts' fingerprint (tasks/texts.py)."""
        return {"shots": self.shots, "split_filter": self.split, "items": [it.doi for it in items],
                TEXTS_KEY: texts_fingerprint(it.text for it in items)}

    def core(self, items: list[Item], shots: list[tuple[str, str]]) -> dict:
        """The core of a run over `items` (a list: the study's selection)."""
        return self.core_of(self.items_part(items), shots)

    def hash(self, items: list[Item], shots: list[tuple[str, str]]) -> str:
        return stable_hash(self.core(items, shots))

    def config_of(self, part: dict, describe: dict, shots: list[tuple[str, str]], extras: dict) -> dict:
        """The record written to config.json: the core, its hash, what describes the run (`describe`: the
        backend's or classifier's description) and the item source's `extras`."""
        core = self.core_of(part, shots)
        return {
            **core,
            "hash": stable_hash(core),
            "seed": self.params.seed,
            "backend": describe,
            "structured": prompts.is_structured(self.variant),
            "system_prompt": prompts.system_prompt(self.codebook, self.variant, self.paraphrase),
            "paraphrase": self.paraphrase,
            "shot_examples": shots,
            # the complete answers the prompt shows (diagnostics: how many answers copy one)
            "prompt_examples": prompts.shown_examples(self.codebook, self.variant, shots),
            **extras,
        }

    def study_extras(self, train_reference: list[list[int]] | None = None) -> dict:
        """config.json's description of the study's data: the split, the source, and the train split's
        reference labels (the majority/prior baselines are fitted on the whole train split, whatever
        --limit selects)."""
        return {"split": SPLIT_INFO, "data_source": self.data_source, "train_reference": train_reference or []}

    def config(self, backend: Backend | None, items: list[Item], shots: list[tuple[str, str]],
               train_reference: list[list[int]] | None = None) -> dict:
        """The config.json of a run over the study's `items`."""
        return self.config_of(self.items_part(items), backend.describe() if backend is not None else {}, shots,
                              self.study_extras(train_reference))

    def folder(self, config_hash: str) -> str:
        """The run folder's name: task, variant, wording, model and the start of the hash."""
        para = f"_p{self.paraphrase}" if self.paraphrase else ""
        return f"label_{self.codebook.task}_{self.variant}{para}_{slug(self.model)}_{config_hash[:8]}"


def select_items(items: list[Item], split: str, limit: int | None) -> list[Item]:
    if split not in ("all", "train", "test"):
        raise UserError(f"unknown split {split!r}: use all, train or test")
    sel = [it for it in items if split == "all" or it.split == split]
    if limit is not None:
        if limit < 1:
            raise UserError("--limit must be at least 1")
        sel = sel[:limit]
    if not sel:
        raise UserError("no items to label (check the data, --split and --limit)")
    return sel


def draw_shots(items: list[Item], codebook: Codebook, variant: str, k: int, seed: int) -> list[tuple[str, str]]:
    """k examples from the TRAIN split only (seeded), with answers rendered in the variant's format."""
    if k <= 0:
        return []
    pool = [it for it in items if it.split == "train" and it.labels is not None and it.text.strip()]
    if len(pool) < k:
        raise UserError(f"--shots {k}: only {len(pool)} labelled training items available")
    rng = random.Random(seed)
    return [(it.text, render_answer(it.labels, codebook, variant)) for it in rng.sample(pool, k)]


def prediction_record(item: Item, gen: Generation, codebook: Codebook, variant: str, phash: str) -> dict:
    parsed = parse_answer(gen.text, codebook) if gen.error is None else None
    return LabelPrediction(**{
        "doi": item.doi,
        "task": item.task,
        "split": item.split,
        "text_sha": text_sha(item.text),
        "prompt_hash": phash,
        "raw": gen.text,
        "labels": list(parsed.labels) if parsed and parsed.labels is not None else None,
        "valid": bool(parsed and parsed.valid),
        "repaired": bool(parsed and parsed.repaired),
        "exact_format": gen.error is None and is_exact_format(gen.text, codebook, variant),
        "reference": list(item.labels) if item.labels is not None else None,
        **gen.call_fields(),
        # the item's grouping columns, for the label distribution per group of a run without references
        **({"meta": meta} if (meta := {k: item.meta[k] for k in GROUP_KEYS if item.meta.get(k)}) else {}),
    }).to_json()


def is_empty(item: Item) -> bool:
    """The empty-text rule: a text with nothing but white space is not sent to a model."""
    return not (item.text or "").strip()


def empty_record(item: Item, codebook: Codebook, phash: str) -> dict:
    """The prediction for an empty text under the label policy (all zeros -> `none`), made without a
    model call and marked `"empty": true`; it counts in the metrics like any other prediction."""
    labels = apply_none_rule((0,) * codebook.n, codebook.none_index).labels
    rec = prediction_record(item, Generation(text=""), codebook, "guidelines", phash)
    return rec | {"labels": list(labels), "valid": True, "repaired": False, "exact_format": False,
                  "seconds": 0.0, "empty": True}


def check_scoring(spec: LabelSpec, backend: Backend | None = None) -> None:
    """What a scoring variant refuses, before anything runs: examples, a backend that cannot score,
    --calibrate with a generating variant."""
    if not prompts.is_scoring(spec.variant):
        if spec.calibrate:
            raise UserError(f"--calibrate applies to the score variant, not {spec.variant!r}")
        return
    if spec.shots:
        raise UserError(f"--shots {spec.shots}: the score variant asks without examples; use --shots 0")
    if backend is not None and not getattr(backend, "can_score", False):
        backend.score_yes_no([])  # the backend's own one-line error



class Classifier:
    """What a fitted classifier offers the runner: label vectors for texts, and a description."""

    name = "classifier"

    def predict_texts(self, texts: list[str]) -> list[list[int]]:  # pragma: no cover - interface
        raise NotImplementedError

    def describe(self) -> dict:  # pragma: no cover - interface
        return {"name": self.name}


def classifier_record(item: Item, labels: list[int], phash: str) -> dict:
    return {"doi": item.doi, "task": item.task, "split": item.split, "text_sha": text_sha(item.text),
            "prompt_hash": phash,
            "raw": json.dumps(labels), "labels": labels, "valid": True, "repaired": False, "exact_format": True,
            "reference": list(item.labels) if item.labels is not None else None, **Generation().call_fields()}


def text_keys(items: Iterable[Item]):
    """(id, text fingerprint) of each item: what `reconcile` checks a resumed run's texts against."""
    return ((it.doi, text_sha(it.text)) for it in items)


def check_spec(spec: LabelSpec, labeller: Backend | Classifier) -> None:
    """A run's prompt variant, wording and scoring checked before anything is read or written."""
    prompts.check_variant(spec.variant)
    prompts.check_paraphrase(spec.variant, spec.paraphrase)
    if not isinstance(labeller, Classifier):
        check_scoring(spec, labeller)
