"""The seed's catalogue names for API models, as aliases of provider:model (read by
`registry.resolve_model`)."""

from __future__ import annotations

API_ALIASES: dict[str, tuple[str, str]] = {
    "o1": ("openai", "o1"),
    "o3-mini": ("openai", "o3-mini"),
    "gpt-4o-mini": ("openai", "gpt-4o-mini"),
    "claude-3-5-sonnet-latest": ("anthropic", "claude-3-5-sonnet-latest"),
    "gemini-2.0": ("gemini", "gemini-2.0-flash"),
    "gemini-2.0-flash": ("gemini", "gemini-2.0-flash"),
}
