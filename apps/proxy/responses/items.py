"""``GET /v1/responses/{id}/input_items``: the input a stored response was asked with, as OpenAI lists it.

The items are the request's own input (not the earlier turns it continued), each with an id (one the
client gave, else one derived from the response's id and the item's place, so it is the same on every
read and ``after`` pages by it), a string ``content`` written as its parts, and a ``status``. Newest first
unless ``order=asc``; ``limit`` 1 to 100 (default 20).
"""

from __future__ import annotations

import hashlib
from typing import Any

from django.http import QueryDict

from apps.proxy.responses.checks import invalid_value

DEFAULT_LIMIT, MAX_LIMIT = 20, 100
ID_PREFIXES = {"message": "msg", "function_call": "fc", "function_call_output": "fco"}


def page(response_id: str, items: list[dict[str, Any]], query: QueryDict) -> dict[str, Any]:
    listed = [listed_item(response_id, index, item) for index, item in enumerate(items)]
    if query.get("order", "desc") == "desc":
        listed.reverse()
    elif query.get("order") != "asc":
        raise invalid_value("order", "expected asc or desc.")
    if after := query.get("after"):
        ids = [item["id"] for item in listed]
        if after not in ids:
            raise invalid_value("after", f"no input item of response '{response_id}' has the id '{after}'.")
        listed = listed[ids.index(after) + 1:]
    limit = _limit(query.get("limit"))
    data = listed[:limit]
    return {"object": "list", "data": data, "first_id": data[0]["id"] if data else "",
            "last_id": data[-1]["id"] if data else "", "has_more": len(listed) > limit}


def listed_item(response_id: str, index: int, item: dict[str, Any]) -> dict[str, Any]:
    kind = str(item.get("type", "message"))
    listed = {"type": kind, **item}
    if not isinstance(listed.get("id"), str):
        digest = hashlib.sha256(f"{response_id}:{index}".encode()).hexdigest()[:48]
        listed["id"] = f"{ID_PREFIXES.get(kind, 'item')}_{digest}"
    if kind in ID_PREFIXES:
        listed.setdefault("status", "completed")
    if kind == "message" and isinstance(item.get("content"), str):
        listed["content"] = [{"type": "output_text", "text": item["content"], "annotations": []}
                             if item.get("role") == "assistant" else {"type": "input_text", "text": item["content"]}]
    return listed


def _limit(value: str | None) -> int:
    if value is None:
        return DEFAULT_LIMIT
    if not value.isdigit() or not 1 <= int(value) <= MAX_LIMIT:
        raise invalid_value("limit", f"expected an integer from 1 to {MAX_LIMIT}.")
    return int(value)
