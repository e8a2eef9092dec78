"""Google Gemini's generateContent API (``kind: gemini``), translated to and from OpenAI's."""

from apps.providers.adapters.gemini.adapter import GeminiAdapter

__all__ = ["GeminiAdapter"]
