"""Reading `/metrics` as Prometheus does: every sample by name and labels, and how far one moved."""

from __future__ import annotations

from collections.abc import Mapping

import httpx
from prometheus_client.parser import text_string_to_metric_families

Samples = Mapping[tuple[str, frozenset[tuple[str, str]]], float]


def parse(text: str) -> Samples:
    """Every sample of a text exposition, by (name, labels)."""
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


async def scrape(client: httpx.AsyncClient) -> Samples:
    """GET /metrics, checked to be Prometheus's text format."""
    response = await client.get("/metrics")
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/plain; version=0.0.4")
    return parse(response.text)


def value(samples: Samples, name: str, **labels: str) -> float:
    """The sum of the samples named `name` whose labels include `labels` (0 where there is none)."""
    wanted = set(labels.items())
    return sum(v for (n, have), v in samples.items() if n == name and wanted <= have)


def has(samples: Samples, name: str, **labels: str) -> bool:
    """Whether any sample named `name` carries these labels."""
    wanted = set(labels.items())
    return any(n == name and wanted <= have for n, have in samples)


def moved(before: Samples, after: Samples, name: str, **labels: str) -> float:
    """How far the samples named `name` with these labels moved from one scrape to the next."""
    return value(after, name, **labels) - value(before, name, **labels)
