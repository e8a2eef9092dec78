"""A fast fake LLM provider speaking OpenAI's, Azure OpenAI's, Anthropic's and Gemini's wire formats,
with fault knobs.

Paths: OpenAI's under /v1 (chat/completions, responses, completions, embeddings, models); Azure's
under /openai/deployments/{deployment}/… (api-version required); Anthropic's /v1/messages and
/v1/messages/count_tokens; Gemini's /v1beta/models/{model}:generateContent,
:streamGenerateContent?alt=sse and :batchEmbedContents.

Replies carry what a gateway must carry: tool calls when tools are offered and the request (or the
model's rule) asks for one, with arguments that fit the tool's schema, and JSON that fits the
requested schema for structured outputs (directives.py, schemas.py).

Used by `make run`, the test suite and the benchmark. It runs on raw asyncio sockets
(no Django on the request path) so that resets, hangs and dribbles are real.
See content.py for the token-counting contract (openai_responses_wire.py for the Responses API's)
and rules.py for the knobs; `--help` lists both.
"""

from .background import BackgroundFakeUpstream
from .rules import Knobs
from .server import FakeUpstream

__all__ = ["BackgroundFakeUpstream", "FakeUpstream", "Knobs"]
