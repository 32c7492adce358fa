"""OpenAI chat completions (official `openai` SDK), and any OpenAI-compatible server via --base-url
(vLLM, Ollama, llama.cpp server, LM Studio).

Structured output: OpenAI's JSON-schema response format (strict). A compatible server gets the form it
accepts (`--structured-mode`, see backends/structured.py): with `auto` the first item is sent alone,
in each form in turn, until the server takes one; the rest follow in that form.
"""

from __future__ import annotations

import math
from functools import lru_cache

from pydantic import BaseModel

from llmscisci.backends import structured
from llmscisci.backends.api_common import APIBackend, Reply, safe_url
from llmscisci.backends.base import YES_NO, BackendOptions, GenParams, Generation, Messages, OnResult
from llmscisci.backends.registry import register_provider
from llmscisci.backends.retry import MalformedResponse
from llmscisci.backends.server_pool import ServerPool, split_urls

# reasoning models take max_completion_tokens and reject sampling parameters
REASONING_PREFIXES = ("o1", "o3", "o4", "gpt-5")
DUMMY_KEY = "not-needed"  # local OpenAI-compatible servers usually ignore the key
TOP_LOGPROBS = 20  # the most alternatives OpenAI returns per position
NO_LOGPROBS = "the server returned no log-probabilities of yes or no (logprobs/top_logprobs)"


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


def json_object_format(schema: type[BaseModel]) -> dict:
    """llama.cpp's form: JSON mode with the schema attached (servers that ignore `schema` still give JSON)."""
    return {"type": "json_object", "schema": _strict_schema(schema)}


@register_provider("openai", scoring=True)
class OpenAIBackend(APIBackend):
    provider = "openai"
    key_envs = ("OPENAI_API_KEY",)
    can_score = True  # where the server returns logprobs (OpenAI's chat models, vLLM, llama.cpp server)
    _scoring = False

    def __init__(self, model: str, options: BackendOptions | None = None):
        opts = options or BackendOptions()
        self.requested_mode = structured.check_mode(opts.structured_mode)
        # OpenAI itself takes json_schema; a compatible server (--base-url) gets what it accepts
        auto = self.requested_mode == "auto"
        self.mode = "json_schema" if auto else self.requested_mode
        self.mode_settled = not (auto and opts.base_url)
        self.mode_source = "requested" if not auto else ("OpenAI" if not opts.base_url else None)
        self._schema_call = False
        super().__init__(model, opts)

    def _missing_key_ok(self) -> bool:
        return bool(self.options.base_url)  # a local compatible server needs no key

    def _dummy_key(self) -> str | None:
        return DUMMY_KEY

    def _make_client(self, key):
        import openai

        def make(url: str | None):
            return openai.OpenAI(api_key=key, base_url=url, timeout=self.options.timeout, max_retries=0)

        urls = split_urls(self.options.base_url)
        if len(urls) > 1:  # several servers: each request to the least busy one
            return ServerPool(urls, make)
        return make(self.options.base_url or None)

    def _transient(self):
        import openai

        return (openai.APITimeoutError, openai.APIConnectionError, openai.APIResponseValidationError)

    def answer_options(self) -> dict:
        # the form changes what a structured answer looks like: part of the cache's backend identity
        if self._scoring:
            return {"top_logprobs": TOP_LOGPROBS}
        if self._schema_call and self.options.base_url and self.mode != "json_schema":
            return {"structured_mode": self.mode}
        return {}

    def describe(self) -> dict:
        out = {**super().describe(), "structured_mode": {
            "requested": self.requested_mode, "used": self.mode if self.mode_settled else None,
            "how": self.mode_source}}
        if isinstance(self.client, ServerPool):
            out["requests_per_server"] = {safe_url(u): n for u, n in self.client.requests_sent().items()}
        return out

    def request(self, messages: Messages, params: GenParams, schema: type[BaseModel] | None) -> dict:
        if schema is not None and self.mode in ("json_object", "prompt"):
            messages = structured.with_schema_note(messages, _strict_schema(schema))
        kw: dict = {"model": self.model, "messages": messages}
        if is_reasoning_model(self.model):
            kw["max_completion_tokens"] = params.max_new_tokens
        else:
            # compatible servers know max_tokens; OpenAI itself prefers max_completion_tokens
            kw["max_completion_tokens" if not self.options.base_url else "max_tokens"] = params.max_new_tokens
            kw["temperature"] = params.temperature
            kw["top_p"] = params.top_p
        kw["seed"] = params.seed
        if self._scoring:
            kw["logprobs"], kw["top_logprobs"] = True, TOP_LOGPROBS
        if schema is not None and self.mode == "json_schema":
            kw["response_format"] = response_format(schema)
        elif schema is not None and self.mode == "json_object":
            kw["response_format"] = json_object_format(schema)
        return kw

    # --- scoring: yes/no log-odds from the first answer token's top_logprobs -------------------------
    def score_yes_no(self, conversations: list[Messages],
                     on_result: OnResult | None = None) -> list[Generation]:
        """One call per conversation with max_tokens=1, logprobs and top_logprobs (Backend.score_yes_no)."""

        def checked(i: int, gen: Generation) -> Generation:
            if "log_odds" in gen.extra:
                gen.error = None  # a one-token answer of white space is still a score
                if gen.text not in ("yes", "no"):
                    gen.extra["answer_token"] = gen.text
                    gen.text = "yes" if gen.extra["log_odds"] > 0 else "no"
            elif gen.error is None:
                gen.error = NO_LOGPROBS
            return gen

        hook = (lambda i, gen: on_result(i, checked(i, gen))) if on_result is not None else None
        self._scoring = True
        try:
            gens = super().generate(conversations, GenParams(max_new_tokens=1, temperature=0.0), None, hook)
        finally:
            self._scoring = False
        return [checked(i, g) for i, g in enumerate(gens)]

    # --- structured output: find the form the server takes ----------------------------------------
    def generate(self, conversations: list[Messages], params: GenParams = GenParams(),
                 schema: type[BaseModel] | None = None, on_result: OnResult | None = None) -> list[Generation]:
        self._schema_call = schema is not None
        try:
            if schema is None or self.mode_settled or not conversations:
                return super().generate(conversations, params, schema, on_result)
            first = self._probe(conversations[0], params, schema)
            if on_result is not None:
                on_result(0, first)
            shifted = (lambda i, gen: on_result(i + 1, gen)) if on_result is not None else None
            return [first] + super().generate(conversations[1:], params, schema, shifted)
        finally:
            self._schema_call = False

    def _probe(self, conv: Messages, params: GenParams, schema: type[BaseModel]) -> Generation:
        """Send the first item alone in each form in turn; settle on the first one the server takes."""
        url = safe_url(self.options.base_url) or ""
        known = structured.remembered(url)
        gen = Generation(error="no structured-output form tried")
        tried: list[str] = []
        for mode in structured.candidates("auto", known):
            self.mode = mode
            tried.append(mode)
            gen = super().generate([conv], params, schema)[0]
            if not gen.extra.get("call_failed"):
                if "attempts" not in gen.extra and gen.error:  # refused before any call (context check)
                    return gen
                self.mode_settled = True
                self.mode_source = "remembered" if mode == known else "first form the server accepted"
                structured.remember(url, mode, self.model)
                structured.announce(url, mode, self.mode_source)
                return gen
            if not structured.rejects_form(gen.extra.get("failure_kind"), gen.error or ""):
                self.mode = tried[0]  # auth, model, context or transient: not about the form
                return gen
        # every form rejected: go on without response_format; the runners' stop rule ends the run
        self.mode_settled, self.mode_source = True, "every form rejected"
        return gen

    def _call(self, messages: Messages, params: GenParams, schema: type[BaseModel] | None) -> Reply:
        resp = self.client.chat.completions.create(**self.request(messages, params, schema))
        reply = to_reply(resp)
        if self._scoring:
            odds = yes_no_log_odds(resp)
            if odds is not None:
                reply.extra["log_odds"], reply.extra["log_odds_bounded"] = odds
        if self._schema_call and self.mode in ("json_object", "prompt") and not reply.refusal:
            found = structured.extract_json(reply.text)  # prompt mode: the JSON out of the prose
            if found != reply.text:
                reply.extra["raw_text"], reply.text = reply.text, found
        return reply


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


def yes_no_log_odds(resp) -> tuple[float, bool] | None:
    """(log P(yes) - log P(no), bounded) from the first answer token's top_logprobs, the spellings of each
    answer summed; an answer missing from the list is bounded by the smallest listed probability
    (bounded=True). None when neither answer is listed or the response has no logprobs."""
    try:
        first = resp.choices[0].logprobs.content[0]
    except (AttributeError, IndexError, TypeError):
        return None
    top = list(getattr(first, "top_logprobs", None) or []) or [first]
    found: list[list[float]] = [[], []]
    for alt in top:
        for k, words in enumerate(YES_NO):
            if alt.token in words:
                found[k].append(float(alt.logprob))
    if not found[0] and not found[1]:
        return None
    floor = min(float(a.logprob) for a in top)
    lse = [math.log(sum(math.exp(v) for v in vals)) if vals else floor for vals in found]
    return lse[0] - lse[1], not (found[0] and found[1])
