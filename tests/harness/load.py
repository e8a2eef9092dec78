"""Many concurrent clients against a gateway, each answer kept as the client saw it."""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass
from typing import Any

import httpx
import orjson


@dataclass(frozen=True)
class Answer:
    sent_at: float  # time.monotonic() when the request left
    status: int | None  # None: no HTTP answer at all (refused, reset)
    request_id: str | None
    content_type: str
    body: bytes

    @property
    def is_openai_error(self) -> bool:
        if self.content_type != "application/json":
            return False
        error = orjson.loads(self.body).get("error")
        return isinstance(error, dict) and {"message", "type", "param", "code"} <= set(error)


async def post_one(client: httpx.AsyncClient, url: str, body: dict[str, Any]) -> Answer:
    sent_at = time.monotonic()
    try:
        response = await client.post(url, json=body)
    except httpx.HTTPError:
        return Answer(sent_at, None, None, "", b"")
    return Answer(sent_at, response.status_code, response.headers.get("x-request-id"),
                  response.headers.get("content-type", ""), response.content)


async def post_concurrently(url: str, raw_key: str, body: dict[str, Any], count: int,
                            *, timeout_s: float = 30) -> list[Answer]:
    """``count`` requests at once, one connection each, as ``count`` separate clients would."""
    limits = httpx.Limits(max_connections=count, max_keepalive_connections=0)
    headers = {"Authorization": f"Bearer {raw_key}"}
    async with httpx.AsyncClient(limits=limits, headers=headers, timeout=timeout_s) as client:
        return list(await asyncio.gather(*(post_one(client, url, body) for _ in range(count))))


async def post_steadily(url: str, raw_key: str, body: dict[str, Any], *, clients: int, duration_s: float,
                        timeout_s: float = 30) -> list[Answer]:
    """``clients`` clients, each sending one request after another for ``duration_s``."""
    deadline = time.monotonic() + duration_s
    headers = {"Authorization": f"Bearer {raw_key}"}
    answers: list[Answer] = []

    async def client_loop(client: httpx.AsyncClient) -> None:
        while time.monotonic() < deadline:
            answers.append(await post_one(client, url, body))

    limits = httpx.Limits(max_connections=clients)
    async with httpx.AsyncClient(limits=limits, headers=headers, timeout=timeout_s) as client:
        await asyncio.gather(*(client_loop(client) for _ in range(clients)))
    return answers
