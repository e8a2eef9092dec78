"""Anthropic's Messages API (``kind: anthropic``), translated to and from OpenAI chat completions."""

from apps.providers.adapters.anthropic.adapter import AnthropicAdapter

__all__ = ["AnthropicAdapter"]
