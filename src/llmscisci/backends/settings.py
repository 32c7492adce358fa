"""The backend settings a user chooses, declared once: the grid's `[backend]` section is this model, and
every command that loads a model takes the same fields as flags (`--batch-size`, `--device`, ...,
generated from here by `llmscisci.cli.backend_flags`). `options()` gives the `BackendOptions` the
backends read."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from llmscisci.backends.base import BackendOptions
from llmscisci.errors import UserError

STRUCTURED_MODES = ("auto", "json_schema", "json_object", "prompt")
CHAT_TEMPLATES = ("llama3", "gemma")


class BackendSettings(BaseModel):
    """Backend settings: local models read the first five, API providers the rest."""

    model_config = ConfigDict(extra="forbid")

    batch_size: int = Field(default=8, ge=1, description="Local models: prompts per batch.")
    device: str = Field(default="auto", description="Local models: auto | cpu | cuda | mps")
    dtype: str = Field(default="auto", description="Local models: auto | float32 | bfloat16 | float16")
    chat_template: Literal["llama3", "gemma"] | None = Field(
        default=None, description="Local models: override the tokenizer's chat template: llama3 | gemma")
    trust_remote_code: bool = Field(default=False, description="Local models: run the model repository's code.")
    base_url: str | None = Field(default=None, description="OpenAI-compatible server URL; several "
                                    "(URL1,URL2,...) share the requests, each to the least busy.")
    concurrency: int = Field(default=8, ge=1, description="API models: requests in flight.")
    rpm: float | None = Field(default=None, gt=0, description="API rate limit, requests per minute.")
    tpm: float | None = Field(default=None, gt=0, description="API rate limit, tokens per minute.")
    timeout: float = Field(default=60.0, gt=0, description="API request timeout, seconds.")
    max_attempts: int = Field(default=6, ge=1, description="API attempts per request.")
    cache: str | None = Field(default=None, description="API response cache file.")
    use_cache: bool = Field(default=True, description="API models: use the response cache (--no-cache: off).")
    refresh: bool = Field(default=False, description="Ignore cached answers, store fresh ones.")
    prices: str | None = Field(default=None, description="Price table TOML overriding the built-in one.")
    gemini_safety_off: bool = Field(default=False, description="Seed's Gemini safety settings (block none).")
    structured_mode: Literal["auto", "json_schema", "json_object", "prompt"] = Field(
        default="auto", description="OpenAI-compatible servers: how structured output is asked for: auto (try "
        "json_schema, then json_object + schema, then prompt only; remembered per --base-url) | json_schema | "
        "json_object | prompt.")

    def check(self) -> "BackendSettings":
        """The one-line errors for values given on a command line (built without validation)."""
        if self.batch_size < 1 or self.concurrency < 1:
            raise UserError("--batch-size and --concurrency must be at least 1")
        if self.chat_template not in (None, *CHAT_TEMPLATES):
            raise UserError(f"unknown --chat-template {self.chat_template!r}: use llama3 or gemma")
        from llmscisci.backends.server_pool import split_urls
        from llmscisci.backends.structured import check_mode

        check_mode(self.structured_mode)
        split_urls(self.base_url)
        return self

    def options(self) -> BackendOptions:
        return BackendOptions(
            device=self.device, dtype=self.dtype, batch_size=self.batch_size, chat_template=self.chat_template,
            trust_remote_code=self.trust_remote_code, base_url=self.base_url, concurrency=self.concurrency,
            rpm=self.rpm, tpm=self.tpm, timeout=self.timeout, max_attempts=self.max_attempts,
            cache_path=self.cache, use_cache=self.use_cache, refresh=self.refresh, prices_path=self.prices,
            gemini_safety_off=self.gemini_safety_off, structured_mode=self.structured_mode,
        )
