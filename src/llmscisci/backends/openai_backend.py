"""OpenAI chat completions (official `openai` SDK), and any OpenAI-compatible server via --base-url
(vLLM, Ollama, llama.cpp server, LM Studio). Structured output: the JSON-schema response format (strict)."""

from __future__ import annotations

from functools import lru_cache

from pydantic import BaseModel

from llmscisci.backends.api_common import APIBackend, Reply
from llmscisci.backends.base import GenParams, Messages
from llmscisci.backends.retry import MalformedResponse

# reasoning models take max_completion_tokens and reject sampling parameters
REASONING_PREFIXES = ("o1", "o3", "o4", "gpt-5")
DUMMY_KEY = "not-needed"  # local OpenAI-compatible servers usually ignore the key


def is_reasoning_model(model: str) -> bool:
    return any(model == p or model.startswith(p + "-") for p in REASONING_PREFIXES)


def _strict_schema(schema: type[BaseModel]) -> dict:
    try:
        from openai.lib._pydantic import to_strict_json_schema

        return to_strict_json_schema(schema)
    except Exception:  # noqa: BLE001 - private helper moved: fall back to pydantic's schema
        return schema.model_json_schema()


def _has_free_form_objects(node) -> bool:
    """Strict mode needs every object closed; a free-form mapping (additionalProperties: {...}) is not."""
    if isinstance(node, dict):
        ap = node.get("additionalProperties")
        if isinstance(ap, dict) or ap is True:
            return True
        return any(_has_free_form_objects(v) for v in node.values())
    if isinstance(node, list):
        return any(_has_free_form_objects(v) for v in node)
    return False


@lru_cache(maxsize=64)
def response_format(schema: type[BaseModel]) -> dict:
    js = _strict_schema(schema)
    return {"type": "json_schema",
            "json_schema": {"name": schema.__name__[:64], "schema": js, "strict": not _has_free_form_objects(js)}}


class OpenAIBackend(APIBackend):
    provider = "openai"
    key_envs = ("OPENAI_API_KEY",)

    def _missing_key_ok(self) -> bool:
        return bool(self.options.base_url)  # a local compatible server needs no key

    def _dummy_key(self) -> str | None:
        return DUMMY_KEY

    def _make_client(self, key):
        import openai

        return openai.OpenAI(api_key=key, base_url=self.options.base_url or None, timeout=self.options.timeout,
                             max_retries=0)

    def _transient(self):
        import openai

        return (openai.APITimeoutError, openai.APIConnectionError, openai.APIResponseValidationError)

    def request(self, messages: Messages, params: GenParams, schema: type[BaseModel] | None) -> dict:
        kw: dict = {"model": self.model, "messages": messages}
        if is_reasoning_model(self.model):
            kw["max_completion_tokens"] = params.max_new_tokens
        else:
            # compatible servers know max_tokens; OpenAI itself prefers max_completion_tokens
            kw["max_completion_tokens" if not self.options.base_url else "max_tokens"] = params.max_new_tokens
            kw["temperature"] = params.temperature
            kw["top_p"] = params.top_p
        kw["seed"] = params.seed
        if schema is not None:
            kw["response_format"] = response_format(schema)
        return kw

    def _call(self, messages: Messages, params: GenParams, schema: type[BaseModel] | None) -> Reply:
        return to_reply(self.client.chat.completions.create(**self.request(messages, params, schema)))


def to_reply(resp) -> Reply:
    """A chat completion (live, or a row of a batch results file) -> Reply."""
    if not getattr(resp, "choices", None):
        raise MalformedResponse("response without choices")
    choice = resp.choices[0]
    msg = choice.message
    usage = resp.usage
    refusal = getattr(msg, "refusal", None)
    extra = {}
    if refusal:
        extra["refusal_message"] = refusal
    return Reply(
        text=(msg.content or refusal or "") if msg is not None else "",
        tokens_in=getattr(usage, "prompt_tokens", 0) or 0,
        tokens_out=getattr(usage, "completion_tokens", 0) or 0,
        model_version=getattr(resp, "model", None),
        refusal=bool(refusal) or choice.finish_reason == "content_filter",
        finish_reason=choice.finish_reason,
        extra=extra,
    )
