"""The one backend interface: local transformers models and API providers alike."""

from __future__ import annotations

import abc
from collections.abc import Callable
from dataclasses import asdict, dataclass, field

from pydantic import BaseModel

Messages = list[dict]  # [{"role": "system"|"user"|"assistant", "content": str}, ...]


@dataclass(frozen=True)
class GenParams:
    max_new_tokens: int = 256
    temperature: float = 0.0  # 0 = greedy
    top_p: float = 1.0
    seed: int = 2025

    def as_dict(self) -> dict:
        return asdict(self)


@dataclass
class Generation:
    """One model answer and its tokenomics. `error` set means the item failed (recorded, not raised)."""

    text: str = ""
    tokens_in: int = 0
    tokens_out: int = 0
    seconds: float = 0.0
    model_version: str | None = None
    error: str | None = None
    refusal: bool = False
    cached: bool = False
    cost_usd: float | None = None
    extra: dict = field(default_factory=dict)

    def as_dict(self) -> dict:
        return asdict(self)

    def call_fields(self) -> dict:
        """What every record of a model call keeps of it (records.CallRecord's call fields)."""
        return {"tokens_in": self.tokens_in, "tokens_out": self.tokens_out, "seconds": round(self.seconds, 4),
                "error": self.error, "refusal": self.refusal, "cached": self.cached,
                "model_version": self.model_version, "cost_usd": self.cost_usd}


OnResult = Callable[[int, Generation], None]

YES_NO = ({"yes", "Yes", "YES", " yes", " Yes", " YES"}, {"no", "No", "NO", " no", " No", " NO"})


class Backend(abc.ABC):
    """Generate answers for a list of conversations.

    `generate` returns one Generation per conversation, in order, and calls `on_result(i, gen)` as each
    one is ready (so a run can append predictions item by item and resume after a crash).
    With `schema` (a pydantic model class) the output must parse against it (constrained decoding
    locally, the provider's structured-output feature for APIs).
    """

    name: str = "backend"
    context_length: int | None = None

    @abc.abstractmethod
    def generate(
        self,
        conversations: list[Messages],
        params: GenParams = GenParams(),
        schema: type[BaseModel] | None = None,
        on_result: OnResult | None = None,
    ) -> list[Generation]: ...

    @abc.abstractmethod
    def count_tokens(self, messages: Messages) -> int:
        """Prompt tokens of a conversation (an estimate where the backend has no local tokenizer)."""

    # whether `score_yes_no` works (local models; OpenAI-compatible APIs that return log-probabilities)
    can_score: bool = False

    def score_yes_no(self, conversations: list[Messages],
                     on_result: OnResult | None = None) -> list[Generation]:
        """Score each conversation's next answer as yes or no, without generating: one Generation per
        conversation, in order, whose `extra["log_odds"]` is log P(yes) - log P(no) of the first answer
        token (case and leading space folded) and whose `text` is the likelier answer. A failed item has
        `error` set, as in `generate`."""
        from llmscisci.errors import UserError

        raise UserError(f"{self.name} cannot score answers by log-probability: use the embedded model, "
                        "a local Hugging Face model or an OpenAI-compatible API that returns logprobs")

    def describe(self) -> dict:
        """What config.json records about this backend (never secrets)."""
        return {"name": self.name, "context_length": self.context_length}

    def check_context(self, messages: Messages, max_new_tokens: int) -> tuple[bool, int]:
        """(fits, prompt_tokens): whether prompt + max_new_tokens fits the context window."""
        n = self.count_tokens(messages)
        if self.context_length is None:
            return True, n
        return n + max_new_tokens <= self.context_length, n


@dataclass
class BackendOptions:
    """Everything a command may pass to a backend; each backend reads the fields that concern it."""

    # local models
    device: str = "auto"  # auto | cpu | cuda | mps
    dtype: str = "auto"  # auto (bf16 on GPU, fp32 on CPU) | float32 | bfloat16 | float16
    batch_size: int = 8
    chat_template: str | None = None  # None (tokenizer's) | llama3 | gemma
    trust_remote_code: bool = False
    load_in_4bit: bool = False  # bitsandbytes 4-bit weights (CUDA only), for QLoRA-style training
    # API providers
    base_url: str | None = None
    concurrency: int = 8
    rpm: float | None = None  # requests per minute
    tpm: float | None = None  # tokens per minute
    timeout: float = 60.0
    max_attempts: int = 6
    backoff_base: float = 1.0  # seconds; tests use milliseconds
    backoff_max: float = 60.0
    cache_path: str | None = None  # default: cache_dir()/responses.sqlite
    use_cache: bool = True
    refresh: bool = False
    prices_path: str | None = None
    gemini_safety_off: bool = False
    structured_mode: str = "auto"  # OpenAI-compatible servers: auto | json_schema | json_object | prompt
