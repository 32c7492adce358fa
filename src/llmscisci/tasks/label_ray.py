"""Labelling on a Ray cluster (`llmscisci label --input FILE --engine ray [--ray-address ADDR] [--workers N]`).

The corpus run is the ordinary one (the one label runner, tasks/label_runner.py): the same reader, prompts, records, run folder,
run hash, checkpoints and resume. Only the model calls move: `RayPool` stands where the backend stands and
hands the conversations of each chunk, in small batches, to a pool of N Ray actors, each holding one
backend built from the same settings (an API client with its own --concurrency, cache and rate limits,
or a local model; with --device cuda each worker asks Ray for one GPU). Answers come back to the driver, which writes each one as it arrives, so a killed run
resumes like any other: only the items not written are asked again.

Without --ray-address a local Ray instance starts on this machine (one CPU per worker). Ray is an
optional extra: `pip install 'llmscisci[ray]'`.
"""

from __future__ import annotations

import importlib.util
import os

from llmscisci.backends.base import Backend, BackendOptions, GenParams, Generation, Messages, OnResult
from llmscisci.errors import UserError

__all__ = ["ENGINES", "RayPool", "check_engine"]

ENGINES = ("local", "ray")
# environment a worker on another machine needs: API keys and the toolkit's own settings
_PASSED_ENV = ("_API_KEY", "LLMSCISCI_", "XDG_CACHE_HOME", "HF_HOME")


def check_engine(engine: str, workers: int, ray_address: str | None) -> None:
    """One-line errors for the engine options, before anything loads."""
    if engine not in ENGINES:
        raise UserError(f"unknown --engine {engine!r}: use local or ray")
    if workers < 1:
        raise UserError(f"--workers {workers}: must be at least 1")
    if engine == "local" and (ray_address or workers != 1):
        raise UserError("--ray-address and --workers apply to --engine ray")
    if engine == "ray" and importlib.util.find_spec("ray") is None:
        raise UserError("--engine ray needs Ray, an optional extra: pip install 'llmscisci[ray]'")


def _worker_env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if any(k.endswith(p) or k.startswith(p) for p in _PASSED_ENV)}


class _Labeller:
    """A Ray actor's body: one backend, built once, answering batches of conversations."""

    def __init__(self, model: str, options: BackendOptions):
        from llmscisci.backends.registry import load_backend

        self.error = None
        try:
            self.backend = load_backend(model, options)
        except UserError as exc:  # told to the driver, which stops with it
            self.error = str(exc)

    def generate(self, convs: list[Messages], params: GenParams, schema) -> list[Generation]:
        return self.backend.generate(convs, params, schema=schema)

    def check_context(self, messages: Messages, max_new_tokens: int) -> tuple[bool, int]:
        return self.backend.check_context(messages, max_new_tokens)

    def describe(self) -> dict:
        return {"error": self.error} if self.error else self.backend.describe()

    def is_api(self) -> bool:
        from llmscisci.backends.api_common import APIBackend

        return isinstance(self.backend, APIBackend)


class RayPool(Backend):
    """A backend whose calls run on N Ray actors (the streaming runner's labeller under --engine ray)."""

    def __init__(self, model: str, options: BackendOptions, workers: int = 2, address: str | None = None,
                 batch: int | None = None):
        import ray

        self.model, self.options, self.workers, self.address = model, options, workers, address
        self.name = f"ray[{workers}]:{model}"
        self.context_length = None
        # a batch per call: enough for an actor's own concurrency, small enough to spread the work
        self.batch = batch or max(1, 2 * options.concurrency)
        if not ray.is_initialized():
            kw: dict = {"address": address} if address else {"num_cpus": workers}
            ray.init(include_dashboard=False, log_to_driver=False, **kw,
                               runtime_env={"env_vars": _worker_env()})
        gpus = 1 if options.device.startswith("cuda") else 0  # a local model on a GPU: one GPU per worker
        actor = ray.remote(num_cpus=1, num_gpus=gpus)(_Labeller)
        self.actors = [actor.remote(model, options) for _ in range(workers)]
        self._inner = ray.get(self.actors[0].describe.remote())
        if "error" in self._inner:  # a bad model name or key: one error here, not one per worker
            self.close()
            raise UserError(self._inner["error"])
        self._api = ray.get(self.actors[0].is_api.remote())
        self._next = 0

    def count_tokens(self, messages: Messages) -> int:
        return 0

    def check_context(self, messages: Messages, max_new_tokens: int) -> tuple[bool, int]:
        if self._api:  # an API backend checks the window itself, on the worker
            return True, 0
        import ray

        self._next = (self._next + 1) % len(self.actors)
        return ray.get(self.actors[self._next].check_context.remote(messages, max_new_tokens))

    def describe(self) -> dict:
        import ray

        try:
            inner = ray.get(self.actors[0].describe.remote())
        except Exception:  # noqa: BLE001 - a worker gone (a stopped run): what it said at the start
            inner = self._inner
        return {**inner, "engine": "ray", "workers": self.workers, "ray_address": self.address or "local"}

    def generate(self, conversations: list[Messages], params: GenParams = GenParams(), schema=None,
                 on_result: OnResult | None = None) -> list[Generation]:
        """Batches to the least loaded actors (two in flight each); results handed on as batches finish."""
        import ray

        n = len(conversations)
        results: list[Generation | None] = [None] * n
        batches = [list(range(i, min(i + self.batch, n))) for i in range(0, n, self.batch)]
        queue = iter(batches)
        pending: dict = {}
        load = [0] * len(self.actors)

        def fill() -> None:
            while True:
                k = min(range(len(self.actors)), key=load.__getitem__)
                if load[k] >= 2:
                    return
                idx = next(queue, None)
                if idx is None:
                    return
                ref = self.actors[k].generate.remote([conversations[i] for i in idx], params, schema)
                pending[ref] = (k, idx)
                load[k] += 1

        fill()
        while pending:
            done, _ = ray.wait(list(pending), num_returns=1)
            k, idx = pending.pop(done[0])
            load[k] -= 1
            for i, gen in zip(idx, ray.get(done[0])):
                results[i] = gen
                if on_result is not None:
                    on_result(i, gen)  # may raise (the stop rule): nothing further is sent
            fill()
        return results  # type: ignore[return-value]

    def close(self) -> None:
        import ray

        for a in self.actors:
            ray.kill(a)
        self.actors = []
