"""The OpenAI Agents SDK, which speaks the Responses API, runs an agent with a function tool through the gateway.

The agent's model forces a tool call on its first turn (``tool_choice="required"``; the SDK resets it
after the call), the SDK runs the tool, sends its output back, and the model's answer ends the run:
two requests, each one ledger row, on an OpenAI deployment and on one the gateway translates for.
"""

from __future__ import annotations

import asyncio

import pytest
from agents import Agent, ModelSettings, OpenAIResponsesModel, Runner, function_tool, set_tracing_disabled

from apps.billing.models import LedgerEntry
from apps.providers.fake_upstream import BackgroundFakeUpstream
from tests.harness.gateway import GatewayProcess
from tests.harness.served import serve_kind
from tests.harness.waiting import wait_until

pytestmark = pytest.mark.usefixtures("live_db")


@pytest.fixture(autouse=True)
def no_tracing_upload() -> None:
    set_tracing_disabled(True)  # the SDK would otherwise post traces to OpenAI


@pytest.mark.parametrize("kind", ["openai", "anthropic"])
def test_an_agent_calls_its_function_tool_and_answers(gateway: GatewayProcess, fake: BackgroundFakeUpstream, kind: str):
    served = serve_kind(gateway, fake.base_url, kind)
    cities: list[str] = []

    @function_tool
    def get_weather(city: str) -> str:
        """The weather in a city."""
        cities.append(city)
        return f"sunny in {city}"

    agent = Agent(name="forecaster", instructions="Answer with the weather.", tools=[get_weather],
                  model=OpenAIResponsesModel(served.model, served.async_client()),
                  model_settings=ModelSettings(tool_choice="required"))

    result = asyncio.run(Runner.run(agent, "weather in Paris?", max_turns=3))

    assert cities == ["mock"]  # the fake's argument for a string parameter
    assert isinstance(result.final_output, str) and result.final_output.startswith("Mock reply to:")
    sent = [request["body"] for request in fake.requests() if request["body"].get("model") == served.upstream_model]
    assert len(sent) == 2 and "sunny in mock" in str(sent[1])
    wait_until(lambda: LedgerEntry.objects.filter(api_key=served.key, endpoint="responses", status="ok").count() == 2)
