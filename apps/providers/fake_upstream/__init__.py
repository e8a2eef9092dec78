"""A fast fake LLM provider speaking OpenAI's and Anthropic's wire formats, with fault knobs.

Used by `make run`, the test suite and the benchmark. It runs on raw asyncio sockets
(no Django on the request path) so that resets, hangs and dribbles are real.
See content.py for the token-counting contract and rules.py for the knobs.
"""

from .background import BackgroundFakeUpstream
from .rules import Knobs
from .server import FakeUpstream

__all__ = ["BackgroundFakeUpstream", "FakeUpstream", "Knobs"]
