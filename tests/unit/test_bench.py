"""The benchmark's pure parts: the sweep, aiperf's records, the metrics, the gate, the results files.

The records are real aiperf 0.13.0 output recorded against the emulated cluster's Dynamo frontend
(tests/unit/fixtures/aiperf-0.13.0/README.md); the figures computed from them are compared with
aiperf's own summary of the same run.
"""

from __future__ import annotations

import csv
import dataclasses
import io
import json
from pathlib import Path
from typing import Any

import pytest
from ansible.errors import AnsibleFilterError

from ansible_collections.wideep.gb200.plugins.filter.bench import bench_points, smoke_completion_problems
from ansible_collections.wideep.gb200.plugins.plugin_utils.bench import results
from ansible_collections.wideep.gb200.plugins.plugin_utils.bench.gate import Limits, Observation, completion_problems, problems, verdict
from ansible_collections.wideep.gb200.plugins.plugin_utils.bench.metrics import gpu_counts, percentile, point_metrics
from ansible_collections.wideep.gb200.plugins.plugin_utils.bench.records import Record, RecordsError, parse_lines, read_records
from ansible_collections.wideep.gb200.plugins.plugin_utils.bench.report import point_row
from ansible_collections.wideep.gb200.plugins.plugin_utils.bench.sweep import PRESETS, Point, SweepError, aiperf_argv, points

FIXTURES = Path(__file__).parent / "fixtures" / "aiperf-0.13.0"
C4 = FIXTURES / "isl256-osl32-c4"
POINT_C4 = Point(index=2, isl=256, osl=32, concurrency=4, requests=16, warmup=0)
# The emulated deployment the fixture was recorded on: prefill_0 and decode_0, 2 trays x 4 GPUs each.
WORKERS = [
    {"name": "prefill_0", "role": "prefill", "nnodes": 2, "gpus": 8, "tp_size": 8, "dp_size": 8, "ep_size": 8},
    {"name": "decode_0", "role": "decode", "nnodes": 2, "gpus": 8, "tp_size": 8, "dp_size": 8, "ep_size": 8},
]
GPUS = gpu_counts(WORKERS)
PLAN: dict[str, Any] = {
    "recipe": {"name": "dsr1-fp8"},
    "engine": "mocker",
    "engine_versions": {"sglang": "0.5.21", "dynamo": "1.6.1"},
    "image": "wideep-emu/serving:dynamo-1.6.1",
    "served_model_name": "deepseek-ai/DeepSeek-R1",
    "frontend": {"url": "http://172.31.240.10:8000"},
    "workers": WORKERS,
}


def aiperf_summary() -> dict[str, Any]:
    data: dict[str, Any] = json.loads((C4 / "profile_export_aiperf.json").read_text())
    return data


# ---------------------------------------------------------------- sweep


def test_presets_expand_in_order_and_keys_override() -> None:
    got = points([{"preset": "1k1k"}, {"preset": "8k1k", "concurrency": [2], "requests": 10}])
    assert [(p.isl, p.osl, p.concurrency) for p in got] == [(1024, 1024, c) for c in PRESETS["1k1k"]["concurrency"]] + [(8192, 1024, 2)]
    assert [p.index for p in got] == list(range(1, 7))
    assert got[-1].requests == 10


def test_requests_per_point_keep_the_concurrency_busy() -> None:
    got = points({"isl": 8, "osl": 8, "concurrency": [1, 4, 16], "requests_per_concurrency": 3, "min_requests": 10})
    assert [p.requests for p in got] == [10, 12, 48]


def test_every_sweep_problem_is_reported_at_once() -> None:
    with pytest.raises(SweepError) as err:
        points([{"preset": "2k2k", "colour": 1}, {"isl": 0, "osl": "64", "concurrency": [4, 4], "warmup": -1}])
    text = str(err.value)
    for expected in (
        "bench_sweep[0].preset: '2k2k' is not a preset",
        "bench_sweep[0]: unknown keys colour",
        "bench_sweep[1].isl: a positive integer is expected, not 0",
        "bench_sweep[1].osl: a positive integer is expected, not '64'",
        "bench_sweep[1].concurrency: [4, 4] lists a value twice",
        "bench_sweep[1].warmup: a non-negative integer is expected, not -1",
    ):
        assert expected in text


def test_the_same_point_twice_is_refused() -> None:
    with pytest.raises(SweepError, match="the same point twice: isl8-osl8-c1"):
        points([{"isl": 8, "osl": 8, "concurrency": 1}, {"isl": 8, "osl": 8, "concurrency": [1, 2]}])


def test_filter_names_the_variable() -> None:
    assert bench_points({"isl": 8, "osl": 4, "concurrency": 2})[0]["name"] == "isl8-osl4-c2"
    with pytest.raises(AnsibleFilterError, match=r"bench_sweep is wrong: bench_sweep\.concurrency"):
        bench_points({"isl": 8, "osl": 4, "concurrency": "many"})
    with pytest.raises(AnsibleFilterError, match="a mapping or a list of mappings"):
        bench_points("1k1k")


def test_aiperf_argv_asks_exactly_osl_tokens_and_exports_records() -> None:
    argv = aiperf_argv("/v/bin/aiperf", POINT_C4, url="http://h:8000", model="m", tokenizer="t", artifact_dir="/d")
    assert argv[:2] == ["/v/bin/aiperf", "profile"]

    def value(flag: str) -> str:
        return argv[argv.index(flag) + 1]

    assert value("--prompt-input-tokens-mean") == "256"
    assert value("--prompt-output-tokens-mean") == "32"
    assert value("--prompt-output-tokens-stddev") == "0"
    assert json.loads(value("--extra-inputs")) == {"ignore_eos": True, "min_tokens": 32}
    assert value("--concurrency") == "4"
    assert value("--request-count") == "16"
    assert value("--export-level") == "records"
    assert "--use-server-token-count" in argv and "--streaming" in argv
    assert "--warmup-request-count" not in argv


# ---------------------------------------------------------------- records


def test_records_of_the_recorded_run() -> None:
    records = read_records(C4)
    assert len(records) == 16 and all(r.ok for r in records)
    assert {r.output_tokens for r in records} == {32}
    # The server counts the chat template's tokens too: 256 asked, 259 seen.
    assert {r.input_tokens for r in records} == {259}
    assert all(len(r.chunk_gaps_ms) == 31 for r in records)


def test_tpot_is_aiperfs_per_request_itl() -> None:
    for record in read_records(C4):
        assert record.tpot_ms == pytest.approx(record.aiperf_itl_ms, rel=1e-9)


def test_error_records_carry_the_reason() -> None:
    records = read_records(FIXTURES / "wrong-model")
    assert len(records) == 4
    assert all(r.error is not None and r.error.startswith("404 Not Found") and "Model not found" in r.error for r in records)


def test_warmup_records_are_not_measured() -> None:
    lines = (C4 / "profile_export.jsonl").read_text().splitlines()
    first = json.loads(lines[0])
    first["metadata"]["benchmark_phase"] = "warmup"
    assert len(parse_lines([json.dumps(first), *lines[1:]], "x")) == 15


def test_units_are_converted_not_assumed() -> None:
    obj = json.loads((C4 / "profile_export.jsonl").read_text().splitlines()[0])
    ms = obj["metrics"]["time_to_first_token"]["value"]
    obj["metrics"]["time_to_first_token"] = {"value": ms / 1000.0, "unit": "s"}
    assert parse_lines([json.dumps(obj)], "x")[0].ttft_ms == pytest.approx(ms)
    obj["metrics"]["time_to_first_token"] = {"value": ms, "unit": "fortnights"}
    with pytest.raises(RecordsError, match="x:1: metric time_to_first_token has unit 'fortnights'"):
        parse_lines([json.dumps(obj)], "x")


def test_bad_records_name_the_file_and_line(tmp_path: Path) -> None:
    with pytest.raises(RecordsError, match=r"profile_export\.jsonl: missing"):
        read_records(tmp_path)
    (tmp_path / "profile_export.jsonl").write_text('{"metadata": {}}\nnot json\n')
    with pytest.raises(RecordsError, match=r"profile_export.jsonl:1: not an aiperf record"):
        read_records(tmp_path)


# ---------------------------------------------------------------- metrics


def test_percentile_interpolates_between_ranks() -> None:
    assert percentile([], 50) is None
    assert percentile([5.0], 99) == 5.0
    assert percentile([1.0, 2.0, 3.0, 4.0], 50) == 2.5
    assert percentile([4.0, 1.0, 3.0, 2.0], 90) == pytest.approx(3.7)
    assert percentile([1.0, 2.0], 100) == 2.0


def test_latencies_equal_aiperfs_own_summary() -> None:
    row = point_metrics(POINT_C4, read_records(C4), GPUS)
    summary = aiperf_summary()
    for ours, theirs in (("ttft_ms", "time_to_first_token"), ("tpot_ms", "inter_token_latency"), ("latency_ms", "request_latency")):
        for stat in ("p50", "p90", "p99"):
            assert row[f"{ours}_{stat}"] == pytest.approx(summary[theirs][stat], rel=1e-9), (ours, stat)
        assert row[f"{ours}_mean"] == pytest.approx(summary[theirs]["avg"], rel=1e-9)


def test_throughputs_agree_with_aiperf_within_its_window() -> None:
    # aiperf's duration starts when the first credit is issued; ours when the first request is
    # sent: the same within a few milliseconds of a 1.6 s run.
    row = point_metrics(POINT_C4, read_records(C4), GPUS)
    summary = aiperf_summary()
    assert row["duration_s"] == pytest.approx(summary["benchmark_duration"]["avg"], rel=0.01)
    assert row["request_throughput"] == pytest.approx(summary["request_throughput"]["avg"], rel=0.01)
    assert row["output_tps"] == pytest.approx(summary["output_token_throughput"]["avg"], rel=0.01)
    assert row["total_tps"] == pytest.approx(summary["total_token_throughput"]["avg"], rel=0.01)


def test_inferencex_figures() -> None:
    row = point_metrics(POINT_C4, read_records(C4), GPUS)
    assert (row["gpus"], row["prefill_gpus"], row["decode_gpus"]) == (16, 8, 8)
    assert row["input_tokens"] == 16 * 259 and row["output_tokens"] == 16 * 32
    assert row["tput_per_gpu"] == pytest.approx(row["total_tps"] / 16)
    assert row["output_tps_per_decode_gpu"] == pytest.approx(row["output_tps"] / 8)
    assert row["input_tps_per_prefill_gpu"] == pytest.approx(row["input_tps"] / 8)
    assert row["interactivity"] == pytest.approx(1000.0 / row["tpot_ms_p50"])
    assert row["interactivity_mean"] == pytest.approx(1000.0 / row["tpot_ms_mean"])
    gaps = [g for r in read_records(C4) for g in r.chunk_gaps_ms]
    assert len(gaps) == 16 * 31 and row["itl_ms_p50"] == percentile([g for g in gaps if g > 0], 50)


def test_tokens_bundled_into_one_chunk_are_not_gaps() -> None:
    """aiperf gives 0 to the later tokens of a chunk that carried several (seen at concurrency 8
    on the emulated cluster): ITL is measured between chunks, TPOT per token."""
    bundled = Record(start_ns=0, end_ns=10**9, output_tokens=5, ttft_ms=100.0, latency_ms=140.0, chunk_gaps_ms=(10.0, 0.0, 0.0, 30.0))
    point = Point(index=1, isl=8, osl=5, concurrency=1, requests=1, warmup=0)
    row = point_metrics(point, [bundled], GPUS)
    assert (row["itl_ms_p50"], row["itl_ms_mean"]) == (20.0, 20.0)
    assert row["tpot_ms_p50"] == 10.0


def test_a_hand_made_point() -> None:
    s = 1_000_000_000
    records = [
        Record(start_ns=0, end_ns=2 * s, input_tokens=100, output_tokens=11, ttft_ms=100.0, latency_ms=1100.0, chunk_gaps_ms=(100.0,) * 10),
        Record(start_ns=0, end_ns=1 * s, input_tokens=100, output_tokens=11, ttft_ms=200.0, latency_ms=700.0, chunk_gaps_ms=(50.0,) * 10),
        Record(start_ns=s, end_ns=4 * s, error="500 Internal Server Error: boom"),
    ]
    point = Point(index=1, isl=100, osl=10, concurrency=2, requests=3, warmup=0)
    row = point_metrics(point, records, {"total": 4, "prefill": 1, "decode": 3})
    assert row["duration_s"] == 4.0
    assert (row["completed"], row["errors"], row["error_rate"]) == (2, 1, pytest.approx(1 / 3))
    assert row["request_throughput"] == 0.5
    assert (row["input_tps"], row["output_tps"], row["total_tps"]) == (50.0, 5.5, 55.5)
    assert row["tput_per_gpu"] == 55.5 / 4
    assert row["output_tps_per_decode_gpu"] == 5.5 / 3
    assert row["input_tps_per_prefill_gpu"] == 50.0
    assert (row["tpot_ms_mean"], row["tpot_ms_p50"]) == (75.0, 75.0)  # 100 and 50 ms
    assert row["interactivity"] == pytest.approx(1000.0 / 75.0)
    assert row["ttft_ms_p50"] == 150.0


def test_no_records_no_figures() -> None:
    row = point_metrics(POINT_C4, [], GPUS)
    assert row["completed"] == 0 and row["error_rate"] is None
    assert row["tput_per_gpu"] is None and row["interactivity"] is None


# ---------------------------------------------------------------- gate


@pytest.mark.parametrize(
    ("obs", "limits", "reasons"),
    [
        (Observation("p", [64, 64], asked=64), Limits(), []),
        (Observation("p", [0, 0, 0], asked=64), Limits(), ["0 output tokens from 3 completed requests"]),
        (
            Observation("p", [64, 0], asked=64),
            Limits(),
            ["1 of 2 completed requests returned 0 output tokens", "32.0 output tokens per request on average, 64 were asked (more than 10% off)"],
        ),
        (Observation("p", [10, 10], asked=64), Limits(), ["10.0 output tokens per request on average, 64 were asked (more than 10% off)"]),
        (Observation("p", [60, 60], asked=64), Limits(), []),
        (Observation("p", [99], asked=64), Limits(early_stop_ok=True), ["a request returned 99 output tokens, 64 were asked"]),
        (Observation("p", [3], asked=64), Limits(early_stop_ok=True), []),
        (Observation("p", [64] * 9, errors=1, asked=64), Limits(), ["error rate 10.0% (1 of 10 requests failed) is above 0%"]),
        (Observation("p", [64] * 9, errors=1, asked=64), Limits(max_error_rate=0.1), []),
        (
            Observation("p", [], errors=4, asked=64),
            Limits(max_error_rate=0.5),
            ["error rate 100.0% (4 of 4 requests failed) is above 50%", "no request completed"],
        ),
        (Observation("p", []), Limits(), ["no request was sent"]),
    ],
)
def test_gate(obs: Observation, limits: Limits, reasons: list[str]) -> None:
    assert problems(obs, limits) == reasons


def test_verdict_names_each_refused_point() -> None:
    lines = verdict([Observation("a", [5], asked=5), Observation("b", [0], asked=5)], Limits())
    assert lines == ["b: 0 output tokens from 1 completed requests"]


def test_a_deployment_that_returns_no_tokens_is_refused() -> None:
    """The recorded run with the server's counts made zero: what srt-slurm #429 printed as success."""
    zeroed = [dataclasses.replace(r, output_tokens=0) for r in read_records(C4)]
    row = point_row(POINT_C4, zeroed, GPUS, Limits())
    assert row["valid"] is False
    assert row["problems"] == ["0 output tokens from 16 completed requests"]
    assert point_row(POINT_C4, read_records(C4), GPUS, Limits())["valid"] is True


def test_an_all_errors_point_is_refused() -> None:
    point = Point(index=1, isl=32, osl=8, concurrency=2, requests=4, warmup=0)
    row = point_row(point, read_records(FIXTURES / "wrong-model"), GPUS, Limits())
    assert row["problems"] == ["error rate 100.0% (4 of 4 requests failed) is above 0%", "no request completed"]


@pytest.mark.parametrize(
    ("usage", "reasons"),
    [
        ({"completion_tokens": 24, "prompt_tokens": 20}, []),
        ({"completion_tokens": 0}, ["smoke completion: 0 output tokens from 1 completed requests"]),
        ({"completion_tokens": 40}, ["smoke completion: a request returned 40 output tokens, 32 were asked"]),
        ({"prompt_tokens": 3}, ["smoke completion: the response carries no usage.completion_tokens ({'prompt_tokens': 3})"]),
        (None, ["smoke completion: the response carries no usage.completion_tokens (None)"]),
    ],
)
def test_the_smoke_gate_uses_the_same_check(usage: Any, reasons: list[str]) -> None:
    assert completion_problems(usage, 32) == reasons
    assert smoke_completion_problems(usage, 32) == reasons


# ---------------------------------------------------------------- results files


def test_results_files_name_the_deployment_in_every_row(tmp_path: Path) -> None:
    rows = [point_row(POINT_C4, read_records(C4), GPUS, Limits())]
    deploy = results.deployment(PLAN)
    doc = results.document(deploy, rows, aiperf="0.13.0", complete=True)
    written = results.write(tmp_path, doc)
    assert [p.name for p in written] == ["results.json", "results.csv"]
    data = json.loads((tmp_path / "results.json").read_text())
    assert data["valid"] is True and data["complete"] is True and data["problems"] == []
    assert data["deployment"]["plan_hash"] == results.plan_hash(PLAN)
    assert data["deployment"]["topology"] == "prefill_0 2 trays 8 GPUs tp8/dp8/ep8; decode_0 2 trays 8 GPUs tp8/dp8/ep8"
    assert "not GB200 performance" in data["note"]
    text = (tmp_path / "results.csv").read_text()
    assert text.startswith("# engine = mocker") and "not GB200 performance" in text.splitlines()[0]
    (row,) = results.read_csv_rows(tmp_path / "results.csv")
    assert (row["plan_hash"], row["recipe"], row["engine"], row["sglang"], row["dynamo"]) == (results.plan_hash(PLAN), "dsr1-fp8", "mocker", "0.5.21", "1.6.1")
    assert row["name"] == "isl256-osl32-c4" and row["valid"] == "true"
    assert float(row["tput_per_gpu"]) == pytest.approx(data["points"][0]["tput_per_gpu"], rel=1e-5)
    assert list(row) == [*results.DEPLOYMENT_COLUMNS, *results.POINT_COLUMNS]


def test_a_refused_or_unfinished_sweep_is_not_valid() -> None:
    zeroed = [dataclasses.replace(r, output_tokens=0) for r in read_records(C4)]
    deploy = results.deployment({**PLAN, "engine": "sglang"})
    doc = results.document(deploy, [point_row(POINT_C4, zeroed, GPUS, Limits())], aiperf="0.13.0", complete=True)
    assert doc["valid"] is False and doc["problems"] == ["isl256-osl32-c4: 0 output tokens from 16 completed requests"]
    assert "note" not in doc
    assert not results.csv_text(doc).startswith("#")
    fine = results.document(deploy, [point_row(POINT_C4, read_records(C4), GPUS, Limits())], aiperf="0.13.0", complete=False)
    assert fine["valid"] is False and fine["problems"] == []
    (csv_row,) = list(csv.DictReader(io.StringIO(results.csv_text(doc))))
    assert csv_row["problems"] == "0 output tokens from 16 completed requests"


def test_plan_hash_follows_the_plan() -> None:
    assert results.plan_hash(PLAN) == results.plan_hash(json.loads(json.dumps(PLAN)))
    assert results.plan_hash(PLAN) != results.plan_hash({**PLAN, "image": "other"})
    assert len(results.plan_hash(PLAN)) == 16
