"""The generation loop of the judge and extraction runners (labelling has its chunked one in
tasks/label_runner.py, with the same context check, stop rule and `call_failed` marks).

`generate_into(run, backend, entries, ...)` checks each prompt against the backend's context window
(prompts that do not fit are recorded as failed, never sent), generates the rest in one backend call and
appends one record per result to the run folder as it arrives, under a progress bar that shows the
running counts of `tally`. The stop rule (tasks/stoprule.py) ends a run that only collects failures;
a record whose call got no answer is marked `call_failed`, so a resumed run asks for it again.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from llmscisci.console import console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

from llmscisci.backends.base import Backend, Generation, GenParams
from llmscisci.runs import RunFolder
from llmscisci.tasks.stoprule import StopRule


def progress_bar() -> Progress:
    return Progress(
        TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn(),
        TextColumn("{task.fields[status]}"), transient=False,
        console=console,  # stdout carries results only (tables, --json)
    )


def count_invalid(rec: dict) -> dict[str, int]:
    return {"invalid": 0 if rec["valid"] else 1}


def generate_into(
    run: RunFolder,
    backend: Backend,
    entries: Sequence[tuple[Any, list[dict]]],
    params: GenParams,
    make_record: Callable[[Any, Generation], dict],
    title: str,
    *,
    schema=None,
    show_progress: bool = True,
    tally: Callable[[dict], dict[str, int]] = count_invalid,
    stop: StopRule | None = None,
) -> None:
    """Generate an answer for each (entry, messages) pair and append `make_record(entry, generation)`."""
    convs, todo = [], []
    for entry, msgs in entries:
        fits, n = backend.check_context(msgs, params.max_new_tokens)
        if fits:
            convs.append(msgs)
            todo.append(entry)
        else:
            run.append([make_record(entry, Generation(error=f"prompt of {n} tokens exceeds the context window"))])
    if not todo:
        return
    rule = stop if stop is not None else StopRule()
    with progress_bar() as bar:
        task_id = bar.add_task(title, total=len(todo), status="", visible=show_progress)
        counts: dict[str, int] = {}
        written = [0]

        def on_result(i: int, gen: Generation) -> None:
            rec = make_record(todo[i], gen)
            if gen.extra.get("call_failed"):
                rec["call_failed"] = True
            run.append([rec])
            written[0] += 1
            for key, value in tally(rec).items():
                counts[key] = counts.get(key, 0) + value
            bar.update(task_id, advance=1, status=" ".join(f"{k} {v}" for k, v in counts.items()))
            rule.check(gen, backend, written[0], run.path)

        bind = getattr(backend, "bind_run", None)
        if bind is not None:  # batch mode keeps its request -> item map in the run folder
            pending = [make_record(e, Generation(error="pending")) for e in todo]
            bind(run.path, [(r.get("doi"), r.get("task")) + ((r["order_id"],) if "order_id" in r else ())
                            for r in pending])
        try:
            backend.generate(convs, params, schema=schema, on_result=on_result)
        finally:
            run.update_config({"backend": backend.describe()})  # e.g. the structured-output form used
