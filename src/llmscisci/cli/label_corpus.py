"""What `llmscisci label` prints for its results (llmscisci.api.label_runs does the labelling): per task
the metrics table and diagnostics, or a corpus's label distribution, the run folder, a batch file's next
step, or a dry run's plan; `--json` gives the same as JSON records. Exit status 3 for unanswered items."""

from __future__ import annotations

from llmscisci.cli.dryrun import emit_text  # noqa: F401 - re-exported


def result_of(done) -> tuple[dict, list]:
    """One task's --json record and what a person reads (`done`: a Labelled)."""
    from llmscisci.cli.common import pending_result, run_result

    if done.plan is not None:
        res = {"task": done.task, "input": done.corpus} if done.corpus is not None else {"task": done.task}
        return {**res, "dry_run": done.plan.as_dict()}, [done.plan.text]
    if done.pending is not None:
        res, line = pending_result(done.task, done.pending)
        return res, [line]
    return run_result(done.task, done.run.path, done.metrics), tables_of(done)


def tables_of(done) -> list:
    """A finished run's tables: a corpus run's distribution (and scores when it has references), or the
    study run's metrics table; the answer diagnostics and any warning (the distribution table ends with
    them); its folder."""
    from llmscisci.metrics.evaluate import format_table

    metrics = done.metrics
    if done.streamed:
        from llmscisci.tasks.stream_finish import distribution_table

        scored = isinstance(metrics.get("all"), dict) and "macro_f1" in metrics["all"]
        tables = [format_table(metrics, done.task)] if scored else []
        return [*tables, distribution_table(metrics), f"run folder: {done.run.path}"]
    from llmscisci.metrics.diagnostics import summary_lines

    return [format_table(metrics, done.task), *summary_lines(metrics), f"run folder: {done.run.path}"]


def show_results(done: list, as_json: bool, json_out) -> None:
    """Print every task's results (one JSON record, or a list of them) and exit 3 if items went unanswered."""
    from llmscisci.cli.common import emit, exit_if_unanswered

    results, tables = [], []
    for d in done:
        res, text = result_of(d)
        results.append(res)
        tables += text
    result = results[0] if len(results) == 1 else results
    if any(d.streamed or d.plan is not None for d in done):  # plain text reaches the reader unchanged
        emit_text(result, tables, as_json, json_out)
    else:
        emit(result, tables, as_json, json_out)
    exit_if_unanswered([r["metrics"] for r in results if "metrics" in r])
