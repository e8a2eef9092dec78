"""Running the fake on a background thread with its own event loop, for tests and fixtures.

    with BackgroundFakeUpstream() as fake:
        client = openai.OpenAI(base_url=f"{fake.base_url}/v1", api_key="sk-test")
        fake.set_rule("gpt-4o", fail_status=429, retry_after=1)
        ...
        assert fake.stats()["requests"] == 1
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable
from concurrent.futures import Future
from types import TracebackType
from typing import Any, Self, TypeVar

from .rules import Knobs
from .server import FakeUpstream, event_loop_factory

T = TypeVar("T")
# Generous, since CI machines stall; only reached if the loop thread is wedged.
CALL_TIMEOUT_SECONDS = 10


class BackgroundFakeUpstream:
    def __init__(self, defaults: Knobs | None = None, *, seed: int = 0,
                 host: str = "127.0.0.1", port: int = 0) -> None:
        self.upstream = FakeUpstream(defaults or Knobs(), seed=seed)
        self.host = host
        self.port = port
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None

    @property
    def base_url(self) -> str:
        """The server's root URL; OpenAI clients want f"{base_url}/v1", Anthropic's this."""
        return f"http://{self.host}:{self.port}"

    def start(self) -> Self:
        started: Future[int] = Future()
        # Daemon, so a test that forgets stop() cannot keep the interpreter alive.
        self._thread = threading.Thread(target=self._run, args=(started,), daemon=True,
                                        name="fake-upstream")
        self._thread.start()
        self.port = started.result(timeout=CALL_TIMEOUT_SECONDS)
        return self

    def stop(self) -> None:
        if self._loop is not None and self._thread is not None:
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(timeout=CALL_TIMEOUT_SECONDS)
        self._loop = self._thread = None

    def set_rule(self, model: str, **knobs: object) -> None:
        """Set the rule for `model` (or "*"); raises RuleError for an unknown or bad knob."""
        self._call(lambda: self.upstream.set_rule(model, **knobs))

    def reset(self) -> None:
        """Forget every rule, counter and recorded request."""
        self._call(self.upstream.reset)

    def stats(self) -> dict[str, Any]:
        return self._call(self.upstream.state.recorder.stats)

    def requests(self, limit: int = 200) -> list[dict[str, Any]]:
        """The last `limit` provider requests received, oldest first."""
        return self._call(lambda: self.upstream.state.recorder.recent(limit))

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 traceback: TracebackType | None) -> None:
        self.stop()

    def _run(self, started: Future[int]) -> None:
        loop = self._loop = event_loop_factory()()
        try:
            started.set_result(loop.run_until_complete(self.upstream.start(self.host, self.port)))
        except OSError as exc:  # e.g. port taken: surface it in start(), not in the thread
            started.set_exception(exc)
            loop.close()
            return
        loop.run_forever()
        loop.run_until_complete(self.upstream.stop())
        loop.close()

    def _call(self, function: Callable[[], T]) -> T:
        """Run `function` on the server's loop, so it never races a request in flight."""
        if self._loop is None:
            raise RuntimeError("the fake upstream is not running; call start() first")

        async def call() -> T:
            return function()

        future = asyncio.run_coroutine_threadsafe(call(), self._loop)
        return future.result(timeout=CALL_TIMEOUT_SECONDS)
