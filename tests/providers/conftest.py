"""Clients pointed at the fake upstream (the `fake` fixture comes from tests/conftest.py).

None of them needs a database.
"""

from __future__ import annotations

from collections.abc import Iterator

import anthropic
import httpx
import openai
import pytest

from apps.providers.fake_upstream import BackgroundFakeUpstream


@pytest.fixture
def http(fake: BackgroundFakeUpstream) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=fake.base_url, timeout=5) as client:
        yield client


@pytest.fixture
def openai_client(fake: BackgroundFakeUpstream) -> openai.OpenAI:
    # No retries: a test that provokes a failure wants to see it, once.
    return openai.OpenAI(base_url=f"{fake.base_url}/v1", api_key="sk-test", max_retries=0,
                         timeout=5)


@pytest.fixture
def anthropic_client(fake: BackgroundFakeUpstream) -> anthropic.Anthropic:
    return anthropic.Anthropic(base_url=fake.base_url, api_key="sk-ant-test", max_retries=0,
                               timeout=5)
