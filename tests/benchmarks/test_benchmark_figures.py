"""The benchmarks' pure parts: how a load generator's output becomes the figures and
ratios docs/benchmarks.md records, and how a profile becomes its top functions."""

from __future__ import annotations

import pytest
from profile_proxy import callgrind_total, hot_functions, wrk_requests
from proxy_http import Latency, Result, arguments, parse_vegeta, report

# `vegeta report -type=json` of a real run (v12.13.0), latencies in nanoseconds.
VEGETA_JSON = (
    '{"latencies":{"total":3344755,"mean":668951,"50th":556715,"90th":1204088,'
    '"95th":1204088,"99th":1204088,"max":2204088,"min":476063},"bytes_in":{"total":0,'
    '"mean":0},"bytes_out":{"total":0,"mean":0},"earliest":"2026-12-02T02:11:58.602179596Z",'
    '"latest":"2026-12-02T02:11:59.398889522Z","end":"2026-12-02T02:11:59.399365585Z",'
    '"duration":796709926,"wait":476063,"requests":5,"rate":6.2758098485144265,'
    '"throughput":4.9,"success":0.8,"status_codes":{"200":4,"0":1},"errors":[]}'
)


def test_a_vegeta_report_becomes_milliseconds_and_the_share_answered() -> None:
    latency = parse_vegeta(VEGETA_JSON)
    assert latency == Latency(
        p50_ms=0.556715, p99_ms=1.204088, max_ms=2.204088, success=0.8, achieved_rps=4.9
    )


def run(cpu: float, p50: float, p99: float, saturation: float) -> Result:
    latency = Latency(p50, p99, p99 * 2, 1.0, 1000.0)
    return Result(cpu, 2000.0, {1000: latency}, saturation, 40.0)


def test_the_report_gives_deltas_over_direct_and_ratios_to_haproxy() -> None:
    results = {
        "direct": run(0.0, 0.30, 1.00, 100_000),
        "weft": run(125.0, 0.55, 2.50, 6_000),
        "haproxy": run(25.0, 0.40, 1.25, 40_000),
    }
    text = report(results, [1000])
    weft = next(line for line in text.splitlines()[6:] if line.startswith("weft"))
    # p50, p99, max, ok, +p50 and +p99 over direct, p50 and p99 as multiples of HAProxy's
    expected = ["weft", "0.55", "2.50", "5.0", "100.0%", "+0.25", "+1.50", "1.38x", "2.00x"]
    assert weft.split() == expected
    assert "Weft/HAProxy CPU per request: 5.00x" in text
    assert "saturation ratio (Weft/HAProxy): 0.15x" in text


def test_the_report_of_some_paths_leaves_out_what_it_has_no_baseline_for() -> None:
    text = report({"weft": run(125.0, 0.55, 2.50, 6_000)}, [1000])
    weft = text.splitlines()[-1].split()
    assert weft[-4:] == ["-", "-", "-", "-"]
    assert "CPU per request:" not in text


def test_paths_are_checked_and_run_in_a_fixed_order() -> None:
    assert arguments(["--paths", "haproxy,weft"]).paths == ["weft", "haproxy"]
    assert arguments(["--quick"]).seconds == 3.0
    with pytest.raises(SystemExit):
        arguments(["--paths", "weft,envoy"])
    with pytest.raises(SystemExit):
        arguments(["--rates", "1000,fast"])


def test_hot_functions_share_samples_by_own_time_and_count_recursion_once() -> None:
    frames = [
        {"name": "run", "file": "/x/loop.py", "line": 1},
        {"name": "parse", "file": "/x/http1.py", "line": 10},
        {"name": "write", "file": "/x/streams.py", "line": 20},
    ]
    samples = [[0, 1, 1], [0, 1, 2], [0, 2], [0]]
    profile = {"shared": {"frames": frames}, "profiles": [{"samples": samples, "weights": [1] * 4}]}
    hot = {h.function: (h.own, h.total) for h in hot_functions(profile)}
    assert hot == {
        "write (streams.py:20)": (0.5, 0.5),
        "parse (http1.py:10)": (0.25, 0.5),
        "run (loop.py:1)": (0.25, 1.0),
    }


def test_a_callgrind_dump_gives_its_instruction_total() -> None:
    dump = "version: 1\ncmd: python proxy.py\nevents: Ir\nfn=main\n3 5\nsummary: 123456\n"
    assert callgrind_total(dump) == 123456
    assert callgrind_total("events: Ir\ntotals: 42\n") == 42
    with pytest.raises(ValueError, match="no summary"):
        callgrind_total("events: Ir\n")


WRK_OUTPUT = """Running 20s test @ http://127.0.0.1:8080/
  1 threads and 4 connections
  Thread Stats   Avg      Stdev     Max   +/- Stdev
    Latency   131.40ms   20.11ms 301.52ms   80.00%
  612 requests in 20.03s, 98.21KB read
Requests/sec:     30.55
"""


def test_wrk_output_gives_the_requests_completed_and_refuses_failed_answers() -> None:
    assert wrk_requests(WRK_OUTPUT) == 612
    failed = WRK_OUTPUT + "  Non-2xx or 3xx responses: 3\n"
    with pytest.raises(ValueError, match="not answered"):
        wrk_requests(failed)
