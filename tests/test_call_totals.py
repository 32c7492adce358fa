"""CallTotals: the one sum of a run's calls, and RunFolder.records() typed by the run's kind."""

import json

from llmscisci.records import CallTotals, JudgeCall, LabelPrediction
from llmscisci.runs import RunFolder


def test_totals_add_up_every_field():
    recs = [LabelPrediction(doi="a", tokens_in=3, tokens_out=2, cost_usd=0.25, seconds=1.5, model_version="v1"),
            LabelPrediction(doi="b", error="timeout", call_failed=True, tokens_in=1),
            LabelPrediction(doi="c", empty=True),
            LabelPrediction(doi="d", refusal=True, cost_usd=0.5, model_version="v2")]
    m = CallTotals.from_records(recs).as_metrics()
    assert m == {"failed": 1, "unanswered": 1, "last_error": "timeout", "refusals": 1, "empty": 1,
                 "tokens": {"in": 4, "out": 2}, "cost_usd": 0.75, "generation_seconds": 1.5,
                 "model_versions": ["v1", "v2"]}
    assert CallTotals.from_records([LabelPrediction(doi="x")]).as_metrics()["cost_usd"] is None


def test_records_are_typed_by_the_runs_kind(tmp_path):
    for kind, cls in (("label", LabelPrediction), ("judge", JudgeCall), (None, LabelPrediction)):
        run = RunFolder(tmp_path / str(kind))
        run.path.mkdir()
        (run.path / "config.json").write_text(json.dumps({"kind": kind} if kind else {}))
        run.append([{"doi": "1", "task": "t", "call_failed": True, "error": "e"}, {"doi": "1", "task": "t", "raw": "ok"}])
        recs = run.records()
        assert [type(r) for r in recs] == [cls] and recs[0].raw == "ok"
        assert [r.raw for r in run.iter_records()] == ["ok"]
