"""`--batch` on the other task runners: extraction and judging through the fake OpenAI batch server give
the same answers as live runs, at the batch price, and a re-run sends nothing."""

from __future__ import annotations

import pytest
from fake_batch import BATCH_SERVERS, BatchPlan
from fakeservers import KEY_ENV, TEST_KEYS

from llmscisci.backends.base import BackendOptions
from llmscisci.backends.batch import BatchOptions, make_batch_backend
from llmscisci.backends.registry import load_backend
from llmscisci.runs import read_jsonl

MODEL = "openai:gpt-4o-mini"


class Clock:
    t = 0.0

    def now(self):
        return self.t

    def sleep(self, s):
        self.t += s


def backends(srv, tmp_path):
    opts = BackendOptions(base_url=srv.base_url, timeout=5, use_cache=False)
    batch = make_batch_backend(MODEL, opts, BatchOptions(poll_interval=60), clock=Clock(), report=lambda s: None)
    return batch, load_backend(MODEL, opts)


def answers(run) -> dict:
    return {(p["doi"], p.get("task"), p.get("order_id")): p["raw"] for p in read_jsonl(run.path / "predictions.jsonl")}


@pytest.fixture
def srv(monkeypatch):
    monkeypatch.setenv(KEY_ENV["openai"], TEST_KEYS["openai"])
    with BATCH_SERVERS["openai"](plan=BatchPlan(polls=1, seed=2), expect_key=TEST_KEYS["openai"]) as s:
        yield s


def test_extract_batch_equals_live(srv, data_dir, tmp_path):
    from llmscisci.tasks.extract.run import ExtractSpec, run_extract
    from llmscisci.tasks.extract.source import read_page
    from llmscisci.tasks.extract.truth import load_truth

    page = read_page(data_dir / "rescience" / "read_index_2022-07-11.html")
    truth = load_truth(data_dir / "rescience" / "published.bib")
    spec = ExtractSpec(variant="structured", model=MODEL, unit="block", limit=8)
    batch, live = backends(srv, tmp_path)
    b = run_extract(spec, page, truth, batch, tmp_path / "b", show_progress=False)
    assert srv.batch_creates == 1 and srv.rows_submitted == 8 and srv.calls == 0
    sent = srv.http_requests
    run_extract(spec, page, truth, batch, tmp_path / "b", show_progress=False)
    assert srv.http_requests == sent  # the finished run: nothing sent again
    lv = run_extract(spec, page, truth, live, tmp_path / "l", show_progress=False)
    assert answers(b) == answers(lv) and len(answers(b)) == 8
    mb, ml = b.metrics(), lv.metrics()
    assert mb["model"] == ml["model"]
    assert (tmp_path / "b").exists() and any(p.name == "batches.json" for p in b.path.iterdir())


def test_judge_batch_equals_live(srv, data_dir, tmp_path):
    from llmscisci.data.codebook import load_codebook
    from llmscisci.data.items import load_items
    from llmscisci.data.labelfiles import load_labels
    from llmscisci.tasks.judge import JudgeSpec, candidates_from_sets, run_judge

    easy = load_codebook("easy")
    items = load_items(easy, data_dir=data_dir)
    cands = candidates_from_sets([load_labels(data_dir / "labels" / f"annotator_{x}.jsonl") for x in "ab"], "easy")
    spec = JudgeSpec(codebook=easy, variant="structured", model=MODEL, orders="all", limit=5,
                     data_source=str(data_dir))
    batch, live = backends(srv, tmp_path)
    b = run_judge(spec, items, cands, batch, tmp_path / "b", show_progress=False)
    assert srv.batch_creates == 1 and srv.rows_submitted == 10 and srv.calls == 0  # 5 items x 2 orders
    lv = run_judge(spec, items, cands, live, tmp_path / "l", show_progress=False)
    assert answers(b) == answers(lv) and len(answers(b)) == 10
    costs_b = sum(p["cost_usd"] for p in read_jsonl(b.path / "predictions.jsonl"))
    costs_l = sum(p["cost_usd"] for p in read_jsonl(lv.path / "predictions.jsonl"))
    assert costs_b == pytest.approx(costs_l / 2, rel=1e-3) and costs_b > 0


def test_grid_model_with_batch_true(srv, data_dir, tmp_path):
    import textwrap

    from llmscisci.backends.pricing import lookup
    from llmscisci.tasks import grid as G

    out = tmp_path / "grid"
    cfg = tmp_path / "g.toml"
    cfg.write_text(textwrap.dedent(f"""
        name = "b"
        out = "{out}"
        tasks = ["easy"]
        variants = ["guidelines", "structured"]
        models = [{{name = "{MODEL}", batch = true}}]
        limit = 6
        [backend]
        base_url = "{srv.base_url}"
        use_cache = false
        poll_interval = 0
    """))
    spec = G.load_grid(cfg)
    grid, inputs = G.prepare_grid(spec, data_dir=data_dir)
    tot = G.totals(grid)
    price = lookup("openai", "gpt-4o-mini")
    # each cell's cost is rounded to 1e-8 dollars (pricing.batch_cost), so the sum may differ by that per cell
    assert tot.api_cost_usd == pytest.approx(price.batch_cost(tot.api_tokens_in, tot.api_tokens_out),
                                             rel=1e-6, abs=1e-8 * len(grid.cells))
    G.run_grid(grid, inputs, show_progress=False)
    assert srv.batch_creates == 2 and srv.rows_submitted == 12 and srv.calls == 0  # one batch per cell
    assert all(c.status == "done" for c in grid.cells)
    runs = [p for p in out.rglob("batches.json")]
    assert len(runs) == 2
    with pytest.raises(Exception, match="needs an API model"):
        G.check_models(G.parse_grid({"tasks": ["easy"], "models": [{"name": "smollm2-135m", "batch": True}]}))
