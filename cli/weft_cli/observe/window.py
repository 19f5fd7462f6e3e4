"""A window of traffic: each series' increase between two reads (counters, histogram
buckets) or its latest value (gauges), labelled with the pod it came from."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from weft_cli.observe.exposition import Labels, Sample
from weft_cli.observe.pods import PodInfo


@dataclass(frozen=True, slots=True)
class Series:
    name: str
    labels: Mapping[str, str]
    value: float


@dataclass(frozen=True)
class Window:
    seconds: float
    series: tuple[Series, ...]
    silent: tuple[str, ...] = field(default=())  # pods whose proxy did not answer


def increases(before: Sequence[Sample], after: Sequence[Sample]) -> list[tuple[str, Labels, float]]:
    """Per series of `after`: its growth since `before` (a series born in between grew
    from 0; one that shrank was reset, by a proxy restart, and counts from 0), or its
    value for a gauge."""
    earlier = {(s.name, s.labels): s.value for s in before}
    found = []
    for sample in after:
        value = sample.value
        if sample.cumulative:
            previous = earlier.get((sample.name, sample.labels), 0.0)
            value = value - previous if value >= previous else value
        found.append((sample.name, sample.labels, value))
    return found


def from_scrapes(
    seconds: float,
    scrapes: Sequence[tuple[PodInfo, Sequence[Sample], Sequence[Sample]]],
    silent: Sequence[str] = (),
) -> Window:
    """`scrapes`: (pod, first read, second read `seconds` later) per answering pod."""
    series = []
    for pod, before, after in scrapes:
        pod_labels = pod.labels()
        for name, labels, value in increases(before, after):
            series.append(Series(name, {**dict(labels), **pod_labels}, value))
    return Window(seconds, tuple(series), tuple(silent))
