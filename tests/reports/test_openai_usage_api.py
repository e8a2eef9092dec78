"""/v1/organization/costs and /usage/*, called by the official OpenAI SDK on a real gateway process."""

from __future__ import annotations

import json
from decimal import Decimal
from typing import Any, TypeVar

import httpx
import openai
import pytest
from openai.types.admin.organization.usage_completions_response import (
    DataResultOrganizationUsageCompletionsResult as CompletionsResult,
)
from openai.types.admin.organization.usage_costs_response import DataResultOrganizationCostsResult as CostsResult
from openai.types.admin.organization.usage_embeddings_response import (
    DataResultOrganizationUsageEmbeddingsResult as EmbeddingsResult,
)

from apps.billing.models import DailyRollup, HourlyRollup
from tests.reports.conftest import DAY_1, DAY_2, END, START, Costs, sdk, spend

pytestmark = pytest.mark.usefixtures("live_db")
T = TypeVar("T")


def get(gateway, raw_key: str, path: str, **params) -> httpx.Response:
    return httpx.get(f"{gateway.url}/v1/organization/{path}", params=params,
                     headers={"Authorization": f"Bearer {raw_key}"}, timeout=10)


def exact(response: httpx.Response) -> Any:
    """The body with every number as a Decimal: how a client keeps the amounts' digits."""
    return json.loads(response.text, parse_float=Decimal)


def typed(results: list[Any], kind: type[T]) -> list[T]:
    """The SDK's results, which it types as a union of every usage kind, as the one this endpoint returns."""
    assert all(isinstance(result, kind) for result in results)
    return results


def test_costs_equal_the_rollups_to_the_last_digit(gateway, costs: Costs):
    body = exact(get(gateway, costs.reader_raw, "costs", start_time=START, end_time=END))

    assert [bucket["start_time"] for bucket in body["data"]] == [START, START + 86400]
    for bucket, day in zip(body["data"], (DAY_1, DAY_2), strict=True):
        (result,) = bucket["results"]
        assert result["amount"]["value"] == spend(costs.tenant, DailyRollup, bucket=day)
        assert result["amount"]["currency"] == "usd"
    total = sum(bucket["results"][0]["amount"]["value"] for bucket in body["data"])
    assert total == spend(costs.tenant) and total.as_tuple().exponent <= -9  # no float rounding on the way


def test_the_sdk_reads_costs_in_openais_shape(gateway, costs: Costs):
    page = sdk(gateway.url, costs.reader_raw).admin.organization.usage.costs(start_time=START, end_time=END)

    assert page.object == "page" and page.has_more is False and page.next_page is None
    assert [(b.object, b.start_time, b.end_time) for b in page.data] == [
        ("bucket", START, START + 86400), ("bucket", START + 86400, END)]
    (result,) = typed(page.data[0].results, CostsResult)
    assert result.amount is not None
    assert result.object == "organization.costs.result" and result.line_item is None and result.project_id is None
    assert result.amount.value == pytest.approx(float(spend(costs.tenant, DailyRollup, bucket=DAY_1)))


def test_costs_by_line_item_split_each_model_into_its_token_meters(gateway, costs: Costs):
    body = exact(get(gateway, costs.reader_raw, "costs", start_time=START, end_time=END,
                     group_by=["line_item", "project_id"]))

    day_1 = {r["line_item"]: r for r in body["data"][0]["results"]}
    assert set(day_1) == {"gpt-test, input_tokens", "gpt-test, cached_input_tokens", "gpt-test, output_tokens",
                          "gpt-big, input_tokens", "gpt-big, cache_write_tokens", "gpt-big, output_tokens",
                          "embed-small, input_tokens"}
    assert day_1["gpt-test, cached_input_tokens"]["quantity"] == 200
    assert day_1["gpt-test, input_tokens"]["quantity"] == 1234 - 200
    assert {r["project_id"] for r in day_1.values()} == {costs.tenant.slug}
    day_2 = {r["line_item"]: r for r in body["data"][1]["results"]}
    assert day_2["gpt-test, adjustments"]["amount"]["value"] == Decimal("-0.0000123457")
    every = [r["amount"]["value"] for bucket in body["data"] for r in bucket["results"]]
    assert sum(every) == spend(costs.tenant)


def test_usage_of_completions_matches_openais_documented_result(gateway, costs: Costs):
    client = sdk(gateway.url, costs.reader_raw)
    page = client.admin.organization.usage.completions(start_time=START, end_time=END, bucket_width="1d",
                                                       group_by=["model", "api_key_id"])

    documented = {"object", "input_tokens", "output_tokens", "input_cached_tokens", "num_model_requests",
                  "project_id", "user_id", "api_key_id", "model", "batch"}  # OpenAI's example result
    raw = exact(get(gateway, costs.reader_raw, "usage/completions", start_time=START, end_time=END))
    assert documented <= set(raw["data"][0]["results"][0])
    day_1 = {(r.model, r.api_key_id): r for r in typed(page.data[0].results, CompletionsResult)}
    assert set(day_1) == {("gpt-test", costs.reader.prefix), ("gpt-big", costs.reader.prefix)}  # no embeddings
    gpt_test = day_1[("gpt-test", costs.reader.prefix)]
    assert (gpt_test.input_tokens, gpt_test.output_tokens, gpt_test.input_cached_tokens) == (1234, 321, 200)
    assert gpt_test.num_model_requests == 1 and gpt_test.object == "organization.usage.completions.result"
    day_2 = typed(page.data[1].results, CompletionsResult)
    assert sum(r.num_model_requests for r in day_2) == 3  # the error, the cache hit and a /v1/messages request


def test_usage_of_embeddings_counts_only_embeddings(gateway, costs: Costs):
    page = sdk(gateway.url, costs.reader_raw).admin.organization.usage.embeddings(
        start_time=START, end_time=END, group_by=["model"])

    (result,) = typed(page.data[0].results, EmbeddingsResult)
    assert (result.object, result.model, result.input_tokens, result.num_model_requests) == (
        "organization.usage.embeddings.result", "embed-small", 5003, 1)
    assert page.data[1].results == []


def test_hourly_buckets_page_with_a_cursor(gateway, costs: Costs):
    client = sdk(gateway.url, costs.reader_raw)
    first = client.admin.organization.usage.completions(start_time=START, end_time=END, bucket_width="1h", limit=24)
    second = client.admin.organization.usage.completions(start_time=START, end_time=END, bucket_width="1h",
                                                         limit=24, page=first.next_page or "")

    assert first.has_more is True and second.has_more is False
    assert second.data[0].start_time == first.data[-1].end_time == int(DAY_2.timestamp())
    requests = sum(r.num_model_requests for page in (first, second) for b in page.data
                   for r in typed(b.results, CompletionsResult))
    rows = HourlyRollup.objects.filter(tenant_id=costs.tenant.pk).exclude(endpoint="embeddings")
    assert requests == sum(row.requests_ok + row.requests_error + row.requests_cancelled for row in rows)


def test_a_key_without_the_reports_scope_is_refused_in_openais_shape(gateway, costs: Costs):
    response = get(gateway, costs.caller_raw, "costs", start_time=START)

    assert response.status_code == 403
    error = response.json()["error"]
    assert set(error) == {"message", "type", "param", "code"} and "reports" in error["message"]
    with pytest.raises(openai.PermissionDeniedError):
        sdk(gateway.url, costs.caller_raw).admin.organization.usage.completions(start_time=START)


def test_a_key_never_sees_another_tenants_numbers(gateway, costs: Costs):
    body = exact(get(gateway, costs.reader_raw, "costs", start_time=START, end_time=END, project_ids=costs.other.slug))
    mine = exact(get(gateway, costs.reader_raw, "costs", start_time=START, end_time=END))

    assert all(bucket["results"] == [] for bucket in body["data"])
    assert sum(b["results"][0]["amount"]["value"] for b in mine["data"]) == spend(costs.tenant) != spend(costs.other)


@pytest.mark.parametrize(("params", "param"), [
    ({"start_time": START, "bucket_width": "1m"}, "bucket_width"),
    ({}, "start_time"),
    ({"start_time": "yesterday"}, "start_time"),
    ({"start_time": START, "group_by": "user_id"}, "group_by"),
    ({"start_time": START, "limit": 500}, "limit"),
    ({"start_time": START, "page": "not-a-cursor"}, "page"),
])
def test_bad_parameters_are_a_400_naming_the_parameter(gateway, costs: Costs, params, param):
    response = get(gateway, costs.reader_raw, "usage/completions", **params)

    assert response.status_code == 400
    assert response.json()["error"]["param"] == param
