"""The backend flags are declared once (BackendSettings): every command that loads a model takes all of
them, the grid's [backend] section is the same model, and a flag's value reaches the backend."""

from __future__ import annotations

import typer.main
import pytest

from console import run_console
from llmscisci.backends import registry
from llmscisci.backends.base import Generation
from llmscisci.backends.settings import BackendSettings
from llmscisci.cli import app
from llmscisci.cli.backend_flags import PARAMETERS
from llmscisci.errors import UserError
from llmscisci.tasks.grid.spec import BackendSection

MODEL_COMMANDS = [("label",), ("judge",), ("ask",), ("extract",), ("grpo", "build"), ("dpo", "build")]


def _command(path):
    cmd = typer.main.get_command(app)
    for name in path:
        cmd = cmd.commands[name]
    return cmd


def _flags(cmd) -> set[str]:
    return {opt for p in cmd.params for opt in p.opts}


@pytest.mark.parametrize("path", MODEL_COMMANDS, ids=" ".join)
def test_every_model_command_takes_every_backend_flag(path):
    flags = _flags(_command(path))
    wanted = {"--no-cache" if f == "use_cache" else "--" + f.replace("_", "-") for f in BackendSettings.model_fields}
    assert wanted <= flags
    assert len(PARAMETERS) == len(BackendSettings.model_fields)  # one flag per setting


def test_the_grid_backend_section_is_the_same_model():
    assert issubclass(BackendSection, BackendSettings)
    assert set(BackendSettings.model_fields) <= set(BackendSection.model_fields)


def test_bad_flag_values_are_one_line_errors_before_loading(capsys, monkeypatch):
    def refuse(*a, **k):
        raise AssertionError("a model was loaded")

    monkeypatch.setattr(registry, "load_backend", refuse)
    code, _out, err = run_console(["ask", "hi", "--concurrency", "0"], capsys, monkeypatch)
    assert code == 2 and "--batch-size and --concurrency must be at least 1" in err
    code, _out, err = run_console(["ask", "hi", "--chat-template", "x"], capsys, monkeypatch)
    assert code == 2 and "unknown --chat-template 'x'" in err
    with pytest.raises(UserError):
        BackendSettings.model_construct(structured_mode="nope").check()


def test_flag_values_reach_the_backend(capsys, monkeypatch, tmp_path):
    seen = {}

    class Fake:
        def generate(self, convs, params, schema=None):
            return [Generation(text="ok", tokens_in=1, tokens_out=1, seconds=0.0) for _ in convs]

    def load(name, options=None):
        seen["options"] = options
        return Fake()

    monkeypatch.setattr(registry, "load_backend", load)
    code, _out, err = run_console(["ask", "hi", "--timeout", "7", "--no-cache", "--prices", tmp_path / "p.toml",
                                   "--device", "cpu", "--json"], capsys, monkeypatch)
    assert code == 0, err
    o = seen["options"]
    assert (o.timeout, o.use_cache, o.prices_path, o.device) == (7.0, False, str(tmp_path / "p.toml"), "cpu")
    assert o.concurrency == 1  # ask sends one request at a time whatever --concurrency says
