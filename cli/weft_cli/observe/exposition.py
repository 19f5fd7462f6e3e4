"""Prometheus text exposition (a proxy's /metrics) to samples."""

from __future__ import annotations

from dataclasses import dataclass

from prometheus_client.parser import text_string_to_metric_families

Labels = tuple[tuple[str, str], ...]
_CUMULATIVE_TYPES = frozenset({"counter", "histogram", "summary"})


@dataclass(frozen=True, slots=True)
class Sample:
    name: str  # as exposed: request_total, response_latency_ms_bucket, tcp_open_connections
    labels: Labels  # sorted; empty values left out (Prometheus reads them as absent)
    value: float
    cumulative: bool  # counters and histograms grow: a window takes their increase


def parse(text: str) -> list[Sample]:
    """Every sample of `text`; raises ValueError when it is not the text format."""
    samples = []
    for family in text_string_to_metric_families(text):
        cumulative = family.type in _CUMULATIVE_TYPES
        for sample in family.samples:
            if sample.name.endswith("_created"):  # creation times, not measurements
                continue
            labels = tuple(sorted((k, v) for k, v in sample.labels.items() if v != ""))
            samples.append(Sample(sample.name, labels, float(sample.value), cumulative))
    return samples
