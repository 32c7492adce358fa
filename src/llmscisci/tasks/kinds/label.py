"""The labelling task kind: one codebook x language model x prompt variant x paraphrase x seed."""

from __future__ import annotations

from llmscisci.backends.base import GenParams
from llmscisci.backends.registry import resolve_model
from llmscisci.prompts import label as label_prompts
from llmscisci.runs import RunFolder
from llmscisci.tasks.base import TaskKind
from llmscisci.tasks.grid.cells import Cell, GridContext
from llmscisci.tasks.grid.spec import GridSpec


def label_spec(ctx: GridContext, cell: Cell):
    """The cell's LabelSpec (the grid's settings, the model entry's max_new_tokens override)."""
    from llmscisci.tasks.label import DEFAULT_MAX_NEW_TOKENS, LabelSpec

    spec: GridSpec = ctx.spec
    mnt = cell.max_new_tokens or spec.max_new_tokens or DEFAULT_MAX_NEW_TOKENS.get(cell.variant, 64)
    return LabelSpec(codebook=cell.codebook, variant=cell.variant, model=cell.model,
                     params=GenParams(max_new_tokens=mnt, temperature=spec.temperature, seed=cell.seed),
                     shots=spec.shots, limit=spec.limit, split=spec.split,
                     data_source=str(ctx.inputs.data_dir), paraphrase=cell.paraphrase or 0)


class Label(TaskKind):
    name = "label"
    prompts = label_prompts
    label_like = True
    results_title = "labelling (all evaluated items)"
    # macro F1 present: over the categories with reference positives; top answer: the share of valid answers
    # equal to the most frequent label vector (near 1: the labels do not depend on the text)
    headline_columns = [("micro F1", "micro_f1"), ("macro F1", "macro_f1"), ("macro F1 present", "macro_f1_present"),
                        ("subset", "subset_accuracy"), ("Hamming", "hamming_loss"), ("invalid", "invalid_rate"),
                        ("top answer", "top_answer_share")]

    def accepts(self, model: str) -> bool:
        return not resolve_model(model).is_baseline

    def codebook_cells(self, exp, codebook, model):
        from llmscisci.prompts.label import paraphrases

        spec = exp.spec
        cells = []
        for v in exp.variants(self.name):
            n_para = len(paraphrases(v))
            if spec.paraphrases > n_para:
                exp.missing_paraphrases.add(f"{v} ({n_para})")
            for p in range(min(spec.paraphrases, n_para) + 1):
                for s in spec.seeds:
                    cells.append(Cell(self.name, codebook.task, model.name, v, s, paraphrase=p, codebook=codebook,
                                      max_new_tokens=model.max_new_tokens))
        return cells

    def plan(self, ctx, cell):
        from llmscisci.prompts import label as prompts
        from llmscisci.runs import stable_hash
        from llmscisci.tasks.label_source import ItemList
        from llmscisci.tasks.texts import find_run

        spec = label_spec(ctx, cell)
        source = ItemList(spec, ctx.inputs.items_of(cell.codebook))  # the items and examples the run will use
        selected, shots = source.items, source.shots
        core = spec.core_of(source.identity(), shots)
        cell.hash, cell.n_items = stable_hash(core), source.count
        run_dir = find_run(ctx.index, core)
        keys = {it.key for it in selected}
        done = (RunFolder(run_dir).done_keys() & keys) if run_dir else set()
        ctx.state(cell, run_dir, len(done))
        pending = [it for it in selected if it.key not in done] if cell.status != "done" else []
        cell.calls = len(pending)
        if ctx.est is not None:
            if prompts.is_scoring(spec.variant):  # one yes/no question per category and item
                convs = [c for it in pending
                         for c in prompts.item_score_messages(it.text, spec.codebook, spec.variant, spec.paraphrase)]
            else:
                convs = [prompts.build_messages(it.text, spec.codebook, spec.variant, shots, spec.paraphrase)
                         for it in pending]
            ctx.estimate(cell, convs, spec.params.max_new_tokens)

    def run(self, ctx, cell, backend, show_progress=True):
        from llmscisci.tasks.label import run_label

        return run_label(label_spec(ctx, cell), ctx.inputs.items_of(cell.codebook), backend, ctx.out,
                         run_dir=ctx.run_dir(cell), show_progress=show_progress)

    def finish(self, ctx, cell):
        from llmscisci.tasks.label import finish_run

        run = RunFolder(ctx.out / cell.dir)
        finish_run(run, cell.codebook)
        return run

    def headline(self, metrics):
        a = metrics.get("all") or {}
        h = {k: a.get(k) for k in ("micro_f1", "macro_f1", "macro_f1_present", "subset_accuracy", "hamming_loss")}
        h["invalid_rate"] = metrics.get("invalid_rate", 0.0)
        h["top_answer_share"] = (metrics.get("diagnostics") or {}).get("top_answer_share")
        return h

    def reevaluate(self, run_dir, reparse=False, skip_bad=False):
        from llmscisci.tasks.label import reevaluate

        return reevaluate(run_dir, reparse=reparse, skip_bad=skip_bad)

    def resume(self, run_dir, backend, *, show_progress=True, data_dir=None, corpus=None, by=None,
               chunk_size=1000):
        """Continue a labelling run: a study run over its data folder (config.json's `data_source`, or
        `data_dir`), a corpus run (`streamed`) over its corpus file (config.json's `input`, or `corpus`: the
        CorpusPlan opened, or a dict of path, id_column, text_column, template); `by` its grouping column
        (default: config.json's); `backend` a saved classifier for `baseline:DIR`."""
        from pathlib import Path

        from llmscisci.errors import UserError
        from llmscisci.tasks.label import LabelSpec

        cfg = self.resumed_config(run_dir)
        if "codebook" not in cfg:
            raise UserError(f"--resume {run_dir}: config.json has no codebook; not a labelling run")
        spec, path = LabelSpec.from_config(cfg), Path(run_dir)
        if corpus is not None or cfg.get("streamed"):
            from llmscisci.data.corpus import CorpusPlan
            from llmscisci.tasks.label_stream import run_label_stream

            plan = corpus
            if not isinstance(plan, CorpusPlan):
                where = corpus or resumed_corpus(cfg)
                plan = CorpusPlan.open(where["path"], spec.codebook, id_column=where.get("id_column"),
                                       text_column=where.get("text_column"), template=where.get("template"))
            spec.data_source = str(plan.path)
            return run_label_stream(spec, plan, backend, path.parent, run_dir=path, chunk_size=chunk_size,
                                    by=cfg.get("by") if by is None else by, show_progress=show_progress)
        from llmscisci.data.items import load_items
        from llmscisci.paths import data_dir as resolve_data_dir
        from llmscisci.paths import data_label

        source = resolve_data_dir(data_dir or spec.data_source or None)
        if data_dir is not None:  # moved: config.json then names where the data is now
            spec.data_source = data_label(source)
        items = load_items(spec.codebook, data_dir=source)
        if resolve_model(spec.model).is_baseline:  # a saved classifier (`baseline --save DIR`)
            from llmscisci.tasks.label_fitted import run_label_classifier

            return run_label_classifier(spec, items, backend, path.parent, run_dir=path)
        from llmscisci.tasks.label import run_label

        return run_label(spec, items, backend, path.parent, run_dir=path, show_progress=show_progress)


def resumed_corpus(cfg: dict) -> dict:
    """Where a corpus run's texts are: config.json's `input` (the file, its id column, the text column
    or template)."""
    inp = cfg.get("input") or {}
    text = (cfg.get("items") or {}).get("text") or inp.get("text") or ""
    template = "{" in text
    return {"path": inp.get("path", ""), "id_column": inp.get("id_column"),
            "text_column": None if template else (text or None), "template": text if template else None}
