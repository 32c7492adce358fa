"""Gemini generateContent (official `google-genai` SDK). Structured output: response_schema with a JSON
mime type. `gemini_safety_off` (opt-in) sends the seed's safety settings: BLOCK_NONE for harassment,
hate speech, sexually explicit, dangerous content and civic integrity."""

from __future__ import annotations

from pydantic import BaseModel

from llmscisci.backends.api_common import APIBackend, Reply
from llmscisci.backends.base import GenParams, Messages
from llmscisci.backends.registry import register_provider
from llmscisci.backends.retry import MalformedResponse

SAFETY_CATEGORIES = (
    "HARM_CATEGORY_HARASSMENT",
    "HARM_CATEGORY_HATE_SPEECH",
    "HARM_CATEGORY_SEXUALLY_EXPLICIT",
    "HARM_CATEGORY_DANGEROUS_CONTENT",
    "HARM_CATEGORY_CIVIC_INTEGRITY",
)
REFUSAL_FINISH = {"SAFETY", "PROHIBITED_CONTENT", "BLOCKLIST", "SPII", "RECITATION", "IMAGE_SAFETY"}


def _enum_name(val) -> str | None:
    if val is None:
        return None
    return getattr(val, "name", None) or str(val).rsplit(".", 1)[-1]


def safety_settings() -> list:
    from google.genai import types

    return [types.SafetySetting(category=c, threshold="BLOCK_NONE") for c in SAFETY_CATEGORIES]


def to_contents(messages: Messages) -> tuple[str | None, list]:
    from google.genai import types

    system = [m["content"] for m in messages if m.get("role") == "system"]
    contents = [
        types.Content(role="model" if m.get("role") == "assistant" else "user",
                      parts=[types.Part(text=str(m.get("content", "")))])
        for m in messages if m.get("role") != "system"
    ]
    return ("\n\n".join(system) if system else None), contents


@register_provider("gemini")
class GeminiBackend(APIBackend):
    provider = "gemini"
    key_envs = ("GEMINI_API_KEY", "GOOGLE_API_KEY")

    def _make_client(self, key):
        from google import genai
        from google.genai import types

        http = types.HttpOptions(
            base_url=self.options.base_url or None,
            timeout=max(1, int(self.options.timeout * 1000)),  # milliseconds
            retry_options=types.HttpRetryOptions(attempts=1),  # retries are ours
        )
        return genai.Client(api_key=key, vertexai=False, http_options=http)

    def _transient(self):
        from google.genai import errors

        import httpx2

        return (httpx2.TimeoutException, httpx2.TransportError, httpx2.DecodingError, errors.UnknownApiResponseError)

    def answer_options(self) -> dict:
        return {"safety_block_none": True} if self.options.gemini_safety_off else {}

    def describe(self) -> dict:
        return {**super().describe(), "safety_block_none": self.options.gemini_safety_off}

    def config(self, system: str | None, params: GenParams, schema: type[BaseModel] | None):
        from google.genai import types

        kw: dict = {
            "temperature": params.temperature,
            "top_p": params.top_p,
            "max_output_tokens": params.max_new_tokens,
            "seed": params.seed,
        }
        if system:
            kw["system_instruction"] = system
        if schema is not None:
            kw["response_mime_type"] = "application/json"
            kw["response_schema"] = schema
        if self.options.gemini_safety_off:
            kw["safety_settings"] = safety_settings()
        return types.GenerateContentConfig(**kw)

    def _call(self, messages: Messages, params: GenParams, schema: type[BaseModel] | None) -> Reply:
        system, contents = to_contents(messages)
        resp = self.client.models.generate_content(model=self.model, contents=contents,
                                                   config=self.config(system, params, schema))
        return to_reply(resp)


def to_reply(resp) -> Reply:
    """A GenerateContentResponse (live, or an inlined batch response) -> Reply."""
    if resp is None:
        raise MalformedResponse("empty response object")
    usage = resp.usage_metadata
    tin = getattr(usage, "prompt_token_count", None) or 0
    tout = (getattr(usage, "candidates_token_count", None) or 0) + (getattr(usage, "thoughts_token_count", None) or 0)
    cands = resp.candidates or []
    block = _enum_name(getattr(resp.prompt_feedback, "block_reason", None)) if resp.prompt_feedback else None
    finish = _enum_name(cands[0].finish_reason) if cands else None
    text = ""
    if cands and cands[0].content and cands[0].content.parts:
        text = "".join(p.text or "" for p in cands[0].content.parts if getattr(p, "text", None)
                       and not getattr(p, "thought", False))
    refusal = bool(block) or finish in REFUSAL_FINISH
    extra = {"block_reason": block} if block else {}
    return Reply(text=text, tokens_in=tin, tokens_out=tout, model_version=resp.model_version,
                 refusal=refusal, finish_reason=finish or block, extra=extra)
