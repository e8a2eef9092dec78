"""The fake upstream's Gemini and Azure OpenAI wire formats, with the same knobs as the others."""

from __future__ import annotations

import httpx
import openai
import orjson
import pytest

from apps.providers.fake_upstream import BackgroundFakeUpstream
from apps.providers.fake_upstream.gemini_wire import THOUGHT_SIGNATURE

GEMINI_HELLO = {"contents": [{"role": "user", "parts": [{"text": "hello there friend"}]}]}


def gemini(http: httpx.Client, model: str, method: str = "generateContent", body: object = None,
           **params: str) -> httpx.Response:
    return http.post(f"/v1beta/models/{model}:{method}", json=GEMINI_HELLO if body is None else body,
                     params=params, headers={"x-goog-api-key": "g-key"})


def sse_events(text: str) -> list[dict[str, object]]:
    return [orjson.loads(line[6:]) for line in text.splitlines() if line.startswith("data: ")]


def test_it_answers_gemini_generate_content_with_usage_metadata(http: httpx.Client, fake: BackgroundFakeUpstream):
    fake.set_rule("gemini-x", cached_tokens=2)
    answer = gemini(http, "gemini-x").json()

    candidate = answer["candidates"][0]
    assert candidate["finishReason"] == "STOP"
    assert candidate["content"]["parts"][0]["text"].startswith("Mock reply to: hello there friend")
    assert answer["usageMetadata"] == {"promptTokenCount": 6, "candidatesTokenCount": 12, "totalTokenCount": 18,
                                       "cachedContentTokenCount": 2}
    assert fake.stats()["by_model"] == {"gemini-x": 1}


def test_it_streams_gemini_as_sse_with_the_finish_reason_and_usage_last(http: httpx.Client):
    response = gemini(http, "gemini-x", "streamGenerateContent", alt="sse")

    events = sse_events(response.text)
    assert response.headers["content-type"].startswith("text/event-stream")
    text = "".join(part["text"] for event in events for part in event["candidates"][0]["content"]["parts"])  # type: ignore[index]
    assert len(text.split()) == 12
    assert "finishReason" in events[-1]["candidates"][0] and "usageMetadata" in events[-1]  # type: ignore[index]
    assert all("finishReason" not in event["candidates"][0] for event in events[:-1])  # type: ignore[index]


def test_it_calls_a_gemini_function_when_told_to(http: httpx.Client, fake: BackgroundFakeUpstream):
    fake.set_rule("gemini-x", tool_call=True)
    tools = [{"functionDeclarations": [{"name": "lookup", "parametersJsonSchema": {
        "type": "object", "properties": {"n": {"type": "integer"}}, "required": ["n"]}}]}]
    answer = gemini(http, "gemini-x", body={**GEMINI_HELLO, "tools": tools}).json()

    assert answer["candidates"][0]["content"]["parts"] == [
        {"functionCall": {"name": "lookup", "args": {"n": 1}}, "thoughtSignature": THOUGHT_SIGNATURE}]


@pytest.mark.parametrize(("knobs", "status", "google_status"), [
    ({"fail_status": 429}, 429, "RESOURCE_EXHAUSTED"), ({"fail_status": 503}, 503, "UNAVAILABLE"),
    ({"require_key": "other"}, 401, "UNAUTHENTICATED"),
])
def test_it_fails_gemini_requests_in_googles_error_shape(http: httpx.Client, fake: BackgroundFakeUpstream,
                                                         knobs: dict[str, object], status: int, google_status: str):
    fake.set_rule("gemini-x", **knobs)
    response = gemini(http, "gemini-x")

    assert response.status_code == status and response.json()["error"]["status"] == google_status


def test_it_honours_no_usage_and_missing_fields_on_gemini(http: httpx.Client, fake: BackgroundFakeUpstream):
    fake.set_rule("quiet", no_usage=True)
    fake.set_rule("broken", missing_fields=True)

    assert "usageMetadata" not in gemini(http, "quiet").json()
    assert "candidates" not in gemini(http, "broken").json()


def test_it_embeds_gemini_batches(http: httpx.Client):
    body = {"requests": [{"content": {"parts": [{"text": "a b"}]}, "outputDimensionality": 5},
                         {"content": {"parts": [{"text": "c"}]}}]}
    answer = gemini(http, "embed-x", "batchEmbedContents", body=body).json()

    assert [len(item["values"]) for item in answer["embeddings"]] == [5, 16]


def test_it_serves_azure_deployments_with_openais_bodies(fake: BackgroundFakeUpstream):
    client = openai.AzureOpenAI(azure_endpoint=fake.base_url, api_key="az-key", api_version="2024-10-21",
                                max_retries=0)
    completion = client.chat.completions.create(model="my-deployment",
                                                messages=[{"role": "user", "content": "hello there friend"}])

    assert completion.model == "my-deployment"
    sent = fake.requests()[-1]
    assert sent["path"] == "/openai/deployments/my-deployment/chat/completions"
    assert sent["headers"]["api-key"] == "az-key"
    assert fake.stats()["by_model"] == {"my-deployment": 1}


def test_it_refuses_azure_requests_without_an_api_version(http: httpx.Client):
    response = http.post("/openai/deployments/d/chat/completions",
                         json={"messages": [{"role": "user", "content": "hi"}]})

    assert response.status_code == 404 and "api-version" in response.json()["error"]["message"]
