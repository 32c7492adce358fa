"""Anthropic messages (official `anthropic` SDK). Structured output: a forced tool call whose input
schema is the pydantic schema; the tool's input, as JSON, is the answer text.

The 2.x SDK speaks API version 2026-10-21, which rejects sampling parameters (temperature, top_p):
they are not sent, so an Anthropic run is not greedy-decoded even with temperature 0 (recorded in
config.json through describe()).
"""

from __future__ import annotations

import json
import re

from pydantic import BaseModel

from llmscisci.backends.api_common import APIBackend, Reply
from llmscisci.backends.base import GenParams, Messages
from llmscisci.backends.registry import register_provider
from llmscisci.backends.retry import MalformedResponse


def tool_name(schema: type[BaseModel]) -> str:
    return (re.sub(r"[^A-Za-z0-9_-]", "_", schema.__name__) or "answer")[:64]


def split_system(messages: Messages) -> tuple[str | None, list[dict]]:
    system = [m["content"] for m in messages if m.get("role") == "system"]
    rest = [{"role": m["role"], "content": m["content"]} for m in messages if m.get("role") != "system"]
    return ("\n\n".join(system) if system else None), rest


@register_provider("anthropic")
class AnthropicBackend(APIBackend):
    provider = "anthropic"
    key_envs = ("ANTHROPIC_API_KEY",)

    def _make_client(self, key):
        import anthropic

        return anthropic.Anthropic(api_key=key, base_url=self.options.base_url or None,
                                   timeout=self.options.timeout, max_retries=0)

    def _transient(self):
        import anthropic

        return (anthropic.APITimeoutError, anthropic.APIConnectionError, anthropic.APIResponseValidationError)

    def describe(self) -> dict:
        return {**super().describe(), "sampling_params_sent": False}

    def request(self, messages: Messages, params: GenParams, schema: type[BaseModel] | None) -> dict:
        system, rest = split_system(messages)
        kw: dict = {"model": self.model, "max_tokens": params.max_new_tokens, "messages": rest}
        if system:
            kw["system"] = system
        if schema is not None:
            name = tool_name(schema)
            kw["tools"] = [{"name": name, "description": "Record the answer in this exact structure.",
                            "input_schema": schema.model_json_schema()}]
            kw["tool_choice"] = {"type": "tool", "name": name}
        return kw

    def _call(self, messages: Messages, params: GenParams, schema: type[BaseModel] | None) -> Reply:
        return to_reply(self.client.messages.create(**self.request(messages, params, schema)), schema)


def to_reply(msg, schema: type[BaseModel] | None) -> Reply:
    """A Message (live, or the message of a succeeded batch result) -> Reply."""
    blocks = getattr(msg, "content", None)
    if blocks is None:
        raise MalformedResponse("response without content")
    text = ""
    if schema is not None:
        for b in blocks:
            if getattr(b, "type", None) == "tool_use":
                text = json.dumps(b.input, ensure_ascii=False)
                break
    if not text:
        text = "".join(getattr(b, "text", "") or "" for b in blocks if getattr(b, "type", None) == "text")
    usage = msg.usage
    return Reply(
        text=text,
        tokens_in=getattr(usage, "input_tokens", 0) or 0,
        tokens_out=getattr(usage, "output_tokens", 0) or 0,
        model_version=getattr(msg, "model", None),
        refusal=msg.stop_reason == "refusal",
        finish_reason=msg.stop_reason,
    )
