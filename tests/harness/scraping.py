"""Reading a gateway's ``/metrics`` as Prometheus would: parsed by prometheus_client's own parser."""

from __future__ import annotations

from dataclasses import dataclass

import httpx
from prometheus_client.parser import text_string_to_metric_families
from prometheus_client.samples import Sample


@dataclass(frozen=True)
class Scrape:
    samples: list[Sample]
    types: dict[str, str]  # family name → counter, gauge, histogram...

    def value(self, name: str, **labels: str) -> float:
        """The sum of ``name``'s samples whose labels include ``labels`` (0 when there is none)."""
        return sum(sample.value for sample in self.samples
                   if sample.name == name and labels.items() <= sample.labels.items())

    def has(self, name: str) -> bool:
        return any(sample.name == name for sample in self.samples)

    def monotonic_series(self) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
        """Every sample that must never go down between scrapes: counters, histograms' buckets, counts
        and sums (all observations here are positive), and the cost, which only grows."""
        growing = {name for name, kind in self.types.items() if kind in ("counter", "histogram")}
        growing.add("llm_cost_total_cents")
        return {
            (sample.name, tuple(sorted(sample.labels.items()))): sample.value for sample in self.samples
            if _family(sample.name, self.types) in growing and not sample.name.endswith("_created")
        }


def _family(sample_name: str, types: dict[str, str]) -> str:
    for suffix in ("_total", "_bucket", "_count", "_sum", "_created"):
        if sample_name.endswith(suffix) and sample_name[: -len(suffix)] in types:
            return sample_name[: -len(suffix)]
    return sample_name


def parse(text: str) -> Scrape:
    samples, types = [], {}
    for family in text_string_to_metric_families(text):
        types[family.name] = family.type
        samples.extend(family.samples)
    return Scrape(samples=samples, types=types)


def scrape(url: str, *, token: str | None = None) -> Scrape:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    response = httpx.get(f"{url}/metrics", headers=headers, timeout=10)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/plain")
    return parse(response.text)
