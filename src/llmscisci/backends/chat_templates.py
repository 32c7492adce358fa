"""Named chat-template overrides (Jinja, rendered by the tokenizer's `apply_chat_template`).

By default a model uses its tokenizer's own template. The seed needed two overrides:

- `llama3`: every message as `<|start_header_id|>ROLE<|end_header_id|>` + blank line + trimmed content +
  `<|eot_id|>`, the bos token before the first, and an open assistant header as generation prompt.
- `gemma`: the system prompt merged into the first user turn (Gemma has no system role), the assistant
  role named `model`, turns wrapped in `<start_of_turn>ROLE\\n ... <end_of_turn>\\n`, and
  `<start_of_turn>model\\n` as generation prompt.

`chatml` (`<|im_start|>ROLE\\n ... <|im_end|>\\n`) is there for base models that ship without a template.
"""

from __future__ import annotations

from llmscisci.errors import UserError

LLAMA3 = (
    "{{ bos_token }}"
    "{% for message in messages %}"
    "{{ '<|start_header_id|>' + message['role'] + '<|end_header_id|>\\n\\n' }}"
    "{{ message['content'] | trim }}"
    "{{ '<|eot_id|>' }}"
    "{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|start_header_id|>assistant<|end_header_id|>\\n\\n' }}{% endif %}"
)

GEMMA = (
    "{{ bos_token }}"
    "{% if messages and messages[0]['role'] == 'system' %}"
    "{% set first_user_prefix = (messages[0]['content'] | trim) + '\\n\\n' %}"
    "{% set loop_messages = messages[1:] %}"
    "{% else %}"
    "{% set first_user_prefix = '' %}"
    "{% set loop_messages = messages %}"
    "{% endif %}"
    "{% for message in loop_messages %}"
    "{% set role = 'model' if message['role'] == 'assistant' else message['role'] %}"
    "{{ '<start_of_turn>' + role + '\\n' }}"
    "{{ (first_user_prefix if loop.first else '') + (message['content'] | trim) }}"
    "{{ '<end_of_turn>\\n' }}"
    "{% endfor %}"
    "{% if add_generation_prompt %}{{ '<start_of_turn>model\\n' }}{% endif %}"
)

CHATML = (
    "{% for message in messages %}"
    "{{ '<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>\\n' }}"
    "{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}"
)

TEMPLATES: dict[str, str] = {"llama3": LLAMA3, "gemma": GEMMA, "chatml": CHATML}


def get_template(name: str) -> str:
    """The Jinja source of a named override; a one-line error for unknown names."""
    try:
        return TEMPLATES[name]
    except KeyError:
        known = ", ".join(sorted(TEMPLATES))
        raise UserError(
            f"unknown chat template {name!r} (known: {known}; omit it to use the tokenizer's)"
        ) from None


def apply_override(tokenizer, name: str | None) -> str:
    """Install a named override on a tokenizer (None keeps its own); returns the name in effect.

    A tokenizer without any template and no override is an error: prompts could not be rendered.
    """
    if name:
        tokenizer.chat_template = get_template(name)
        return name
    if not getattr(tokenizer, "chat_template", None):
        known = ", ".join(sorted(TEMPLATES))
        raise UserError(
            f"the model's tokenizer has no chat template: choose one with --chat-template ({known})"
        )
    return "tokenizer"
