"""A grid with `[backend] engine = "ray"`: each model's calls on a pool of Ray actors, started once for the
grid. The same labels and the same run folders (names, hashes) as the grid without it, config.json naming
the engine (slow: starts Ray). The engine's settings are checked when the grid file is read (fast)."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

import pytest
from console import run_console
from fakeservers import make_server, set_keys

from llmscisci.errors import UserError
from llmscisci.runs import read_jsonl
from llmscisci.tasks import grid as G
from llmscisci.tasks import label_ray


def spec_of(backend: dict, **kw) -> G.GridSpec:
    return G.parse_grid({"tasks": ["easy"], "models": ["openai:gpt-4o-mini"], "backend": backend, **kw}, "g.toml")


@pytest.mark.parametrize("backend, extra, message", [
    ({"engine": "spark"}, {}, "g.toml: backend.engine: Input should be 'local' or 'ray'"),
    ({"engine": "ray", "workers": 0}, {}, "g.toml: backend.workers"),
    ({"workers": 2}, {}, 'g.toml: backend: workers and ray_address apply to engine = "ray"'),
    ({"ray_address": "auto"}, {}, 'g.toml: backend: workers and ray_address apply to engine = "ray"'),
    ({"engine": "ray"}, {"variants": ["guidelines", "score"]}, "not with the 'score' variant"),
    ({"engine": "ray"}, {"models": [{"name": "openai:gpt-4o-mini", "batch": True}]},
     "model 'openai:gpt-4o-mini' has batch = true"),
    ({"engine": "ray"}, {"tasks": ["extract"], "extract": {"unit": "page"}}, 'extract.unit = "page"'),
])
def test_engine_settings_are_one_line_errors_when_the_grid_is_read(backend, extra, message):
    with pytest.raises(UserError) as exc:
        spec_of(backend, **extra)
    assert message in str(exc.value) and "\n" not in str(exc.value)


def test_missing_ray_names_the_extra(monkeypatch):
    monkeypatch.setattr(label_ray.importlib.util, "find_spec", lambda name, *a: None)
    with pytest.raises(UserError, match=r"g.toml: .*pip install 'llmscisci\[ray\]'"):
        spec_of({"engine": "ray", "workers": 2})
    spec_of({})  # the local engine does not need Ray


def test_the_engine_is_not_part_of_a_cell_hash(tmp_path, data_dir):
    pytest.importorskip("ray")
    plans = []
    for backend in ({}, {"engine": "ray", "workers": 2, "ray_address": "auto"}):
        spec = spec_of(backend, tasks=["easy", "judge"], variants=["guidelines", "structured"], limit=3,
                       out=str(tmp_path / "g"))
        g, _ = G.prepare_grid(spec, data_dir=data_dir, estimate=False)  # plans only: no backend, no Ray
        plans.append([(c.id, c.hash) for c in g.cells])
    assert plans[0] == plans[1] and all(h for _, h in plans[0])


# ---- running on Ray (slow) ----------------------------------------------------------------------------
def grid_file(tmp_path: Path, out: Path, base_url: str, engine: str) -> Path:
    ray = 'engine = "ray"\nworkers = 2\n' if engine == "ray" else ""
    text = f"""
        name = "t"
        out = "{out}"
        tasks = ["easy"]
        variants = ["guidelines", "structured"]
        models = ["openai:gpt-4o-mini"]
        limit = 8
        [backend]
        base_url = "{base_url}"
        use_cache = false
        max_attempts = 2
        """
    path = tmp_path / f"{engine}.toml"
    path.write_text(textwrap.dedent(text) + ray, encoding="utf-8")
    return path


@pytest.mark.slow
def test_ray_grid_labels_like_the_local_grid(tmp_path, data_dir, capsys, monkeypatch):
    ray = pytest.importorskip("ray")
    set_keys(monkeypatch, "openai")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    pools: list[label_ray.RayPool] = []
    real_init = label_ray.RayPool.__init__

    def counted(self, *a, **kw):
        pools.append(self)
        real_init(self, *a, **kw)

    monkeypatch.setattr(label_ray.RayPool, "__init__", counted)
    runs = {}
    try:
        with make_server("openai") as srv:
            for engine in ("local", "ray"):
                srv.reset()
                out = tmp_path / engine
                cfg = grid_file(tmp_path, out, srv.base_url, engine)
                code, _, err = run_console(["grid", cfg, "--data-dir", data_dir], capsys, monkeypatch)
                assert code == 0, err
                assert srv.calls == 16  # 2 cells x 8 items, each asked once
                runs[engine] = json.loads((out / "grid.json").read_text())
    finally:
        ray.shutdown()
    assert len(pools) == 1 and pools[0].actors == []  # one pool for the model's two cells, closed at the end
    local, on_ray = runs["local"], runs["ray"]
    assert [(c["id"], c["dir"], c["hash"]) for c in on_ray["cells"]] == \
        [(c["id"], c["dir"], c["hash"]) for c in local["cells"]]
    assert on_ray["spec"]["backend"]["engine"] == "ray" and local["spec"]["backend"]["engine"] == "local"
    for c in local["cells"]:
        d1, d2 = tmp_path / "local" / c["dir"], tmp_path / "ray" / c["dir"]
        p1, p2 = read_jsonl(d1 / "predictions.jsonl"), read_jsonl(d2 / "predictions.jsonl")
        assert len(p2) == 8
        assert {p["doi"]: (p["labels"], p["valid"]) for p in p2} == {p["doi"]: (p["labels"], p["valid"]) for p in p1}
        c1, c2 = (json.loads((d / "config.json").read_text()) for d in (d1, d2))
        assert c2["hash"] == c1["hash"] and "engine" not in c1["backend"]
        assert c2["backend"]["engine"] == "ray" and c2["backend"]["workers"] == 2
