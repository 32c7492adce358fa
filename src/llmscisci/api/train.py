"""Studies 2 and 3 from Python: thin wrappers over the training package, as `llmscisci dpo ...` and
`llmscisci grpo ...` call it. `settings` are the `--set section.key=value` overrides as a dict
(`{"train.max_steps": 4}`); a config TOML (`configs/dpo.toml`) may be given as `config`."""

from __future__ import annotations

import json
import os
from pathlib import Path

from llmscisci.api.inputs import codebook_of, codebooks_of
from llmscisci.api.options import backend_settings
from llmscisci.errors import DataError, UserError


def _overrides(settings) -> list[str]:
    """`--set` overrides from a dict ({"train.max_steps": 4}) or as given on the command line (["k=v"])."""
    if isinstance(settings, (list, tuple)):
        return list(settings)
    return [f"{k}={json.dumps(v)}" for k, v in (settings or {}).items()]


def _tasks(task) -> list:
    return codebooks_of(task)


# --- study 2: DPO --------------------------------------------------------------------------------
def dpo_pairs(*, strategy: str = "self", task="easy", variant: str = "guidelines", labels=None,
              model: str = "smollm2-135m", samples: int = 4, temperature: float = 0.9, use_response=None,
              keep_ties: bool = False, quantile: float = 0.95, seed: int = 2025, data_dir=None,
              out: str | Path = "runs/prefs", **options) -> dict:
    """Build a preference set (prompt / chosen / rejected, canonical split) as `llmscisci dpo build`;
    returns its card plus `path` and `rows` (the pairs)."""
    settings = backend_settings(options)
    tasks = list(task) if isinstance(task, (list, tuple)) else [task]
    if not tasks:
        raise UserError("task is empty")
    card, rows = build_preferences(
        strategy, tasks, variant, labels, model, samples, temperature, use_response, keep_ties, quantile, seed,
        data_dir, Path(out), settings.options())
    return {**card, "path": str(out), "rows": rows}


def build_preferences(strategy: str, tasks: list, variant: str, labels, model: str, samples: int,
                      temperature: float, use_response: bool | None, keep_ties: bool, quantile: float, seed: int,
                      data_dir, out: Path, options: dict, tasks_name: str | None = None) -> tuple[dict, list]:
    """The preference set of `llmscisci dpo build` and `dpo_pairs`, saved to `out`: (its card, the pairs).
    `tasks`: task names, codebook files or Codebooks; `tasks_name` the card's `tasks` (default: their
    names joined by commas); `options` the backend's generation options."""
    from llmscisci.data.items import load_items
    from llmscisci.data.labelfiles import load_labels
    from llmscisci.data.split import SPLIT_INFO
    from llmscisci.paths import cache_dir
    from llmscisci.paths import data_dir as resolve
    from llmscisci.prompts.label import check_generating, check_variant
    from llmscisci.rewards.tokens import load_tokenizer
    from llmscisci.train import preferences as P

    if strategy not in P.STRATEGIES:
        raise UserError(f"unknown --strategy {strategy!r}: use one of {', '.join(P.STRATEGIES)}")
    if keep_ties and strategy != "by-source":
        raise UserError("--keep-ties applies to --strategy by-source only")
    use_response = strategy == "by-source" if use_response is None else use_response
    check_variant(variant)
    check_generating(variant, "preference pairs")
    src = resolve(data_dir)
    files = [Path(f) for f in (labels or [])] or sorted((src / "labels").glob("annotator_*.jsonl"))
    if strategy == "by-source" and len(files) != 2:
        raise UserError("by-source needs exactly two --labels files: chosen first, rejected second")
    if strategy == "by-correctness" and len(files) < 2:
        raise UserError("by-correctness needs at least two label files")
    rows, books = [], []
    for t in tasks:
        cb = codebook_of(t)
        books.append(cb)
        items = load_items(cb, data_dir=src)
        sets = [load_labels(f, known_dois=[it.doi for it in items]) for f in files] if strategy != "self" else []
        if strategy == "by-source":
            rows += P.by_source(items, cb, variant, sets[0], sets[1], use_response, keep_ties)
        elif strategy == "by-correctness":
            rows += P.by_correctness(items, cb, variant, sets, use_response)
        else:
            samp = P.sample_answers(items, cb, variant, model, samples, seed, temperature,
                                    cache_file=cache_dir() / "dpo_samples.jsonl", options=options)
            rows += P.self_pairs(items, cb, variant, samp)
    rows, lengths = P.length_filter(rows, load_tokenizer(model), quantile)
    card = {"strategy": strategy, "tasks": tasks_name if tasks_name is not None else ",".join(cb.task for cb in books),
            "variant": variant, "model": model, "label_files": [str(f) for f in files],
            "samples": samples if strategy == "self" else None, "seed": seed, "lengths": lengths,
            "split": SPLIT_INFO, "data_source": str(src), "use_response": use_response,
            "keep_ties": keep_ties if strategy == "by-source" else None}
    P.save_preferences(rows, out, card)
    return card, rows


# --- supervised fine-tuning ------------------------------------------------------------------------
def sft_train(config=None, *, settings: dict | None = None, data_dir=None, out=None):
    """Train a LoRA adapter on prompt/completion rows built from the reference labels (`llmscisci sft
    train`); returns the training output (`.path`, the adapter folder, and `.read_log()`)."""
    from llmscisci.train.config import resolve_config
    from llmscisci.train.sft import DEFAULTS, train_sft

    return train_sft(resolve_config(config, DEFAULTS, _overrides(settings), data_dir=data_dir, out_dir=out))


def dpo_train(preferences=None, *, config=None, settings: dict | None = None, out=None,
              report_to: str | None = None):
    """Train a LoRA policy with DPO (`llmscisci dpo train`); returns the training output (`.path`, the
    adapter folder to label with as `model=`, and `.read_log()`). `report_to`: tensorboard, wandb,
    mlflow or none (default: the config's)."""
    from llmscisci.train.config import resolve_config
    from llmscisci.train.dpo import DEFAULTS, train_dpo

    cfg = resolve_config(config, DEFAULTS, _overrides(settings), out_dir=out, train={"report_to": report_to},
                         data={"preferences": str(preferences) if preferences else None})
    return train_dpo(cfg)


def dpo_eval(policy, *, reference: str | None = None, task="easy", variant: str = "guidelines",
             preferences=None, data_dir=None, out=None) -> dict:
    """Policy vs reference on the held-out split (`llmscisci dpo eval`); with `preferences`, also the
    held-out implicit-reward accuracy. Returns the comparison (also written to OUT/comparison.json)."""
    from llmscisci.runs import write_json
    from llmscisci.train.compare import evaluate_policy
    from llmscisci.train.layout import MARKER

    policy = Path(getattr(policy, "path", policy))
    if not (policy / MARKER).is_file():
        raise UserError(f"{policy}: not a training output folder (no {MARKER})")
    info = json.loads((policy / MARKER).read_text("utf-8"))
    dest = Path(out) if out is not None else policy / "eval"
    result = evaluate_policy(str(policy), reference or info["base_model"], _tasks(task), variant,
                             str(data_dir) if data_dir else None, dest)
    if preferences is not None:
        from llmscisci.train.dpo import implicit_reward_accuracy
        from llmscisci.train.preferences import load_preferences

        cfg = json.loads((policy / "train_config.json").read_text("utf-8"))
        dd = load_preferences(preferences)
        result["implicit_reward"] = implicit_reward_accuracy(policy, dd["test"] if "test" in dd else [],
                                                            float(cfg["dpo"]["beta"]))
        write_json(dest / "comparison.json", result)
    return result


# --- study 3: GRPO -------------------------------------------------------------------------------
def train_prevalences(codebooks: list, names: list[str], data_dir) -> dict | None:
    """Train-split prevalences per task, when a reward of the mix (`names`) needs them (balanced)."""
    from llmscisci.rewards.registry import REWARDS

    if not any(REWARDS[n].needs_prevalence for n in names):
        return None
    from llmscisci.data.items import load_items
    from llmscisci.paths import data_dir as resolve
    from llmscisci.rewards.core import prevalence

    prev = {}
    for cb in codebooks:
        items = [it for it in load_items(cb, data_dir=resolve(data_dir)) if it.split == "train" and it.labels]
        if not items:
            raise UserError(f"no labelled train items for task {cb.task!r} to compute prevalences from")
        prev[cb.task] = prevalence([it.labels for it in items])
    return prev


def reward_mix(rewards, books: list, data_dir, tokenizer, n_labels: int, none_index=None) -> tuple:
    """(mix, how tokens are counted) for scoring completions: the mix `rewards` ("name:weight,..." or a
    [rewards] table) built with the train-split prevalences of `books` when a reward needs them and the
    token counter of `tokenizer` when a reward counts tokens."""
    from llmscisci.rewards.registry import RewardContext, build_mix, counts_tokens, parse_mix
    from llmscisci.rewards.tokens import WORDS, token_counter

    names = [name for name, _, _ in parse_mix(rewards)]
    prev = train_prevalences(books, names, data_dir)
    count, method = token_counter(tokenizer) if counts_tokens(names) else (None, tokenizer)
    if isinstance(tokenizer, str) and tokenizer.strip().lower() in WORDS:
        method = tokenizer  # words counted as the user named them ("words" or "whitespace")
    ctx = RewardContext(n_labels=n_labels, none_index=none_index, prevalence=prev, count_tokens=count,
                        token_method=method)
    return build_mix(rewards, ctx), method


def probe_rows(rewards=None, *, task="easy", truth=None, completions=(), tokenizer: str = "whitespace",
               huge_words: int = 5000, data_dir=None) -> tuple:
    """(rows, mix, tokens) of the adversarial probes scored with a reward mix, for `grpo_probe` and
    `llmscisci grpo probe` (which shows the mix's terms and bounds)."""
    from llmscisci.prompts.cot import fields
    from llmscisci.rewards.probes import score_probes
    from llmscisci.rewards.registry import SEED_MIX

    if huge_words < 0:
        raise UserError("--huge-words must be >= 0")
    [cb] = _tasks(task)
    vec = list(truth) if truth is not None else json.loads(fields(cb)["example"])
    if len(vec) != cb.n or any(v not in (0, 1) or isinstance(v, bool) for v in vec):
        raise UserError(f"--truth must be a list of {cb.n} 0/1 values, got {truth!r}")
    mix, method = reward_mix(rewards or SEED_MIX, [cb], data_dir, tokenizer, cb.n, cb.none_index)
    return score_probes(mix, vec, list(completions), task=cb.task, huge_words=huge_words), mix, method


def grpo_probe(rewards: str | None = None, *, task="easy", truth=None, completions=(),
               tokenizer: str = "whitespace", huge_words: int = 5000, data_dir=None):
    """Score the adversarial probe completions (and any of your own) with a reward mix, as
    `llmscisci grpo probe`: a DataFrame, one row per probe, one column per reward and `total`."""
    import pandas as pd

    rows, _, _ = probe_rows(rewards, task=task, truth=truth, completions=completions, tokenizer=tokenizer,
                            huge_words=huge_words, data_dir=data_dir)
    return pd.DataFrame(rows)


def score_completions(rows: list, rewards=None, *, task="easy", tokenizer: str = "words", data_dir=None) -> tuple:
    """(scored rows, summary, mix, tokens): `rows` (dicts with `completion` and a 0/1 `truth`, checked by
    the caller) scored with a reward mix, for `grpo_score` and `llmscisci grpo score`."""
    from llmscisci.rewards.registry import SEED_MIX
    from llmscisci.rewards.scorefile import score_rows

    mix, method = reward_mix(rewards or SEED_MIX, _tasks(task), data_dir, tokenizer, len(rows[0]["truth"]))
    try:
        scored, summary = score_rows(rows, mix)
    except ValueError as exc:  # e.g. balanced: a row's task without prevalences
        raise UserError(str(exc)) from None
    return scored, summary, mix, method


def grpo_score(rows, rewards: str | None = None, *, task="easy", tokenizer: str = "words", data_dir=None):
    """Score completions (`rows`: dicts with `completion` and `truth`, a 0/1 list; optionally `task`)
    with a reward mix, as `llmscisci grpo score`: a DataFrame of the rows with one column per reward and
    `total`; `.attrs["summary"]` holds the summary (means, rewards paid without the format)."""
    import pandas as pd

    rows = list(rows)
    if not rows:
        raise DataError("rows", "no rows")
    for i, r in enumerate(rows, 1):
        for key in ("completion", "truth"):
            if not isinstance(r, dict) or key not in r:
                raise DataError("rows", f"missing field {key!r}", row=i)
        t = r["truth"]
        if not isinstance(t, list) or not t or any(type(v) is not int or v not in (0, 1) for v in t):
            raise DataError("rows", f"'truth' must be a non-empty list of 0/1 integers, got {t!r}", row=i,
                            column="truth")
    scored, summary, _, _ = score_completions(rows, rewards, task=task, tokenizer=tokenizer, data_dir=data_dir)
    df = pd.DataFrame(scored)
    df.attrs["summary"] = summary.to_dict()
    return df


def grpo_build(*, task="easy", source: str = "annotators", annotators=None, per_item: str = "one",
               format: str = "conversational", tokenizer: str = "smollm2-135m", quantile: float = 0.95,
               drop_long: bool = False, max_new_tokens: int = 384, data_dir=None, out: str | Path = "runs/cot",
               force: bool = False, **options) -> dict:
    """Build chain-of-thought prompt/completion rows with the canonical split, as `llmscisci grpo build`
    (from the annotators' responses, or traces of a teacher model: `source`, with the backend options);
    returns the data set's card."""
    settings = backend_settings(options)
    tasks = list(task) if isinstance(task, (list, tuple)) else [task]
    return build_cot_set(tasks, source, annotators, per_item, format, tokenizer, quantile, drop_long, max_new_tokens,
                         data_dir, Path(out), force, settings.options())


def _task_name(task) -> str:
    """A task as the chain-of-thought builder reads it: a built-in name or a codebook file (checked)."""
    cb = codebook_of(task)
    if isinstance(task, (str, os.PathLike)):
        return str(task)
    if cb.source == "python":
        raise UserError(f"task {cb.task!r}: a codebook built in Python; save it as a .toml file for grpo build")
    return cb.task if cb.source == "builtin" else cb.source


def build_cot_set(tasks: list, source: str, annotators, per_item: str, fmt: str, tokenizer: str, quantile: float,
                  drop_over: bool, max_new_tokens: int, data_dir, out: Path, force: bool, options: dict) -> dict:
    """The chain-of-thought data set of `grpo build` and `grpo_build`, saved to `out`: its card. The
    options are checked before the teacher or the tokenizer loads."""
    from llmscisci.paths import data_dir as resolve
    from llmscisci.train import cot

    if not tasks:
        raise UserError("--task names no task")
    names = [_task_name(t) for t in tasks]
    if fmt not in cot.FORMATS:
        raise UserError(f"unknown --format {fmt!r}: use {' or '.join(cot.FORMATS)}")
    if per_item not in cot.PER_ITEM:
        raise UserError(f"unknown --per-item {per_item!r}: use one or all")
    if not 0 < quantile <= 1:
        raise UserError(f"--quantile must be in (0, 1], got {quantile}")
    if max_new_tokens < 1:
        raise UserError("--max-new-tokens must be >= 1")
    cot.check_out(out, force)
    src = resolve(data_dir)
    teacher = None
    if source != cot.ANNOTATORS:
        from llmscisci.backends.registry import load_backend

        teacher = load_backend(source, options)  # the backend flags apply to the teacher
    tok = None
    if tokenizer.strip().lower() != "whitespace":
        from llmscisci.rewards.tokens import load_tokenizer

        tok = load_tokenizer(tokenizer)
    rows, card = cot.build_cot(names, src, teacher=teacher, annotator_files=annotators, per_item=per_item, fmt=fmt,
                               tokenizer=tok, quantile=quantile, drop_over=drop_over, max_new_tokens=max_new_tokens,
                               tokenizer_label=f"tokenizer of {tokenizer}" if tok is not None else None)
    card["tokenizer"] = tokenizer
    card["data_source"] = str(src)
    return cot.save_cot(rows, out, card, force=force)


def grpo_train(config=None, *, settings: dict | None = None, data_dir=None, out=None, rewards: str | None = None,
               truth_labels=None):
    """Train a LoRA policy with GRPO on programmatic rewards (`llmscisci grpo train`); returns the
    training output (`.path`, `.read_log()`)."""
    from llmscisci.train.config import resolve_config
    from llmscisci.train.grpo import DEFAULTS, train_grpo

    if truth_labels is not None and not Path(truth_labels).exists():
        raise UserError(f"--truth-labels {truth_labels}: file not found")
    cfg = resolve_config(config, DEFAULTS, _overrides(settings), data_dir=data_dir, out_dir=out,
                         rewards={"mix": rewards},
                         data={"truth_labels": str(truth_labels) if truth_labels else None})
    return train_grpo(cfg)


def grpo_eval(policy, *, reference: str | None = None, task="easy", data_dir=None, out=None,
              max_new_tokens: int = 192) -> dict:
    """Policy vs reference on the held-out split plus held-out reward means (`llmscisci grpo eval`)."""
    from llmscisci.runs import write_json
    from llmscisci.train.compare import evaluate_policy
    from llmscisci.train.grpo import cot_rows, heldout_rewards, prevalence
    from llmscisci.train.layout import MARKER

    policy = Path(getattr(policy, "path", policy))
    if not (policy / MARKER).is_file():
        raise UserError(f"{policy}: not a training output folder (no {MARKER})")
    cfg = json.loads((policy / "train_config.json").read_text("utf-8"))
    adapter_cfg = json.loads((policy / "adapter_config.json").read_text("utf-8"))
    dest = Path(out) if out is not None else policy / "eval"
    data = str(data_dir) if data_dir else (cfg["data"]["data_dir"] or None)
    result = evaluate_policy(str(policy), reference or adapter_cfg["base_model_name_or_path"],
                             _tasks(task), "cot", data, dest, max_new_tokens=max_new_tokens)
    train_rows, _ = cot_rows({**cfg, "data": {**cfg["data"], "data_dir": data or cfg["data"]["data_dir"]}})
    prev = prevalence(train_rows)
    mix = cfg["rewards"]["mix"]
    result["heldout_rewards"] = {role: {t: heldout_rewards(d["runs"][role], mix, prev)
                                        for t, d in result["tasks"].items()} for role in ("policy", "reference")}
    write_json(dest / "comparison.json", result)
    return result
