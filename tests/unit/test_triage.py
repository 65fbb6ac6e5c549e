"""Triage: every signature on a recorded or seeded log (tests/fixtures/triage/cases.yml), the
structured sources (state, control plane, facts), negative cases, ordering, the table, scrubbing."""

from __future__ import annotations

import copy
import json
import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from ansible_collections.wideep.gb200.plugins.module_utils._scrub import scrub, scrub_data, scrub_env, secret_pairs
from ansible_collections.wideep.gb200.plugins.plugin_utils.triage import engine

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "triage"
CASES = yaml.safe_load((FIXTURES / "cases.yml").read_text(encoding="utf-8"))
SIGS = engine.load_signatures()
RUNNING = {"Status": "running", "Running": True, "ExitCode": 0, "OOMKilled": False, "Error": ""}
EXITED = {"Status": "exited", "Running": False, "ExitCode": 1, "OOMKilled": False, "Error": ""}
TOKEN = "hf_emulated_TEST_token_not_a_credential"


def worker(name: str, log: str = "", state: dict[str, Any] | None = None, rank: str = "0") -> dict[str, Any]:
    return {
        "name": name,
        "labels": {"wideep.gb200.kind": "worker", "wideep.gb200.worker": "prefill_0", "wideep.gb200.rank": rank},
        "state": state if state is not None else dict(RUNNING),
        "log": log,
    }


def evidence(collected: dict[str, Any], preflight: dict[str, Any] | None = None, plan: dict[str, Any] | None = None) -> engine.Evidence:
    return engine.evidence_from_collected(collected, preflight or {}, plan)


def codes(findings: list[engine.Finding]) -> list[str]:
    return [f["code"] for f in findings]


def test_signatures_file_is_complete() -> None:
    """At least 12 signatures, each with code, title, evidence, severity, fix and a source."""
    assert len(SIGS) >= 12
    assert len({s.code for s in SIGS}) == len(SIGS)
    for sig in SIGS:
        assert sig.title and sig.fix and sig.source and sig.matchers, sig.code
    # the failures the issue names, each by its code
    wanted = {
        "IMEX_CHANNEL_MISSING",
        "GPUDIRECT_RDMA_MISSING",
        "HCA_DOWN",
        "PORT_IN_USE",
        "DEEPGEMM_WARMUP_TIMEOUT",
        "NCCL_MNNVL_INIT",
        "ETCD_UNREACHABLE",
        "NATS_UNREACHABLE",
        "GPU_OUT_OF_MEMORY",
        "PD_BOOTSTRAP_TIMEOUT",
        "WEIGHTS_INCOMPLETE",
        "IMAGE_OR_ENGINE_MISMATCH",
        "ARG_PARSE_ERROR",
        "GROUP_RANK_LOST",
        "RENDEZVOUS_TIMEOUT",
    }
    assert wanted <= {s.code for s in SIGS}


def test_every_signature_has_a_case() -> None:
    """Each signature is exercised by a log fixture here or by a structured case below."""
    structured = {
        "WORKER_EXITED",
        "ETCD_UNREACHABLE",
        "NATS_UNREACHABLE",
        "HCA_DOWN",
        "IMEX_CHANNEL_MISSING",
        "GPUDIRECT_RDMA_MISSING",
        "IMAGE_OR_ENGINE_MISMATCH",
        "GPU_OUT_OF_MEMORY",
    }
    assert {s.code for s in SIGS} <= {c["code"] for c in CASES["cases"]} | structured


@pytest.mark.parametrize("case", CASES["cases"], ids=[c["file"] for c in CASES["cases"]])
def test_signature_matches_its_log(case: dict[str, str]) -> None:
    assert case["source"], "every fixture notes its source"
    log = (FIXTURES / case["file"]).read_text(encoding="utf-8")
    found = engine.triage(evidence({"tray1": {"containers": [worker("wideep-prefill_0-rank0", log, EXITED)]}}), SIGS)
    assert found, f"{case['file']}: nothing matched"
    assert found[0]["code"] == case["code"], codes(found)
    assert found[0]["host"] == "tray1" and found[0]["container"] == "wideep-prefill_0-rank0"
    plain = re.sub(r"\x1b\[[0-9;]*[A-Za-z]", "", log)  # the evidence is shown without terminal colours
    assert found[0]["evidence"] and all(line in plain for line in found[0]["evidence"])
    assert "WORKER_EXITED" not in codes(found), "an explained exit is not reported as unexplained"


def test_healthy_log_matches_nothing() -> None:
    log = (FIXTURES / CASES["healthy"]).read_text(encoding="utf-8")
    ev = evidence({"tray1": {"containers": [worker("wideep-prefill_0-rank0", log)]}})
    assert engine.triage(ev, SIGS) == []
    assert engine.table([]) == ["triage: no known failure signature matched"]


def test_a_healthy_cluster_matches_nothing() -> None:
    """Running containers, healthy control plane, GPU tray facts that are all fine."""
    tray = {
        "gpu_count": 4,
        "imex": {"channels": ["channel0"]},
        "peermem": {"loaded": False},
        "dmabuf": {"supported": True},
        "hcas": [{"device": "mlx5_0", "port": 1, "state": "4: ACTIVE"}],
    }
    collected = {
        "tray0": {
            "containers": [{"name": "wideep-etcd", "labels": {"wideep.gb200.kind": "etcd"}, "state": dict(RUNNING), "log": ""}],
            "control_plane": {"etcd": {"reachable": True, "healthy": True}, "nats": {"reachable": True, "healthy": True}},
        },
        "tray1": {"containers": [worker("w", "", dict(RUNNING))], "engines": [{"image": "sha256:1", "sglang": "0.5.4", "dynamo": "0.6.1"}]},
    }
    plan = {"hosts": {"tray1": {"engine": {"sglang": "0.5.4", "dynamo": "0.6.1"}, "containers": [{"name": "w"}]}}}
    assert engine.triage(evidence(collected, {"tray1": tray}, plan), SIGS) == []


def test_with_requires_its_context() -> None:
    """A watchdog timeout without DeepGEMM in the same log is not a DeepGEMM warm-up timeout."""
    line = (FIXTURES / "deepgemm_warmup_timeout.log").read_text(encoding="utf-8").splitlines()[-1]
    found = engine.triage(evidence({"tray1": {"containers": [worker("w", line + "\n", EXITED)]}}), SIGS)
    assert "DEEPGEMM_WARMUP_TIMEOUT" not in codes(found)
    assert codes(found) == ["WORKER_EXITED"]


def test_state_sources() -> None:
    oom = dict(EXITED, ExitCode=137, OOMKilled=True)
    found = engine.triage(evidence({"tray2": {"containers": [worker("w", "", oom)]}}), SIGS)
    assert codes(found) == ["GPU_OUT_OF_MEMORY"]
    assert found[0]["evidence"] == ["kind=worker worker=prefill_0 rank=0 status=exited exit_code=137 oom_killed=true error="]
    found = engine.triage(evidence({"tray2": {"containers": [worker("w", "", EXITED)]}}), SIGS)
    assert codes(found) == ["WORKER_EXITED"]


def test_missing_planned_container() -> None:
    plan = {"hosts": {"tray3": {"containers": [{"name": "wideep-decode_0-rank0", "labels": {"wideep.gb200.kind": "worker"}}]}}}
    found = engine.triage(evidence({"tray3": {"containers": []}}, plan=plan), SIGS)
    assert codes(found) == ["IMAGE_OR_ENGINE_MISMATCH"]
    assert found[0]["container"] == "wideep-decode_0-rank0"
    # a tray that did not answer says nothing about its containers
    assert engine.triage(evidence({}, plan=plan), SIGS) == []


def test_control_plane_sources() -> None:
    collected = {
        "tray0": {
            "containers": [
                {"name": "wideep-etcd", "labels": {"wideep.gb200.kind": "etcd"}, "state": dict(RUNNING), "log": ""},
                {"name": "wideep-nats", "labels": {"wideep.gb200.kind": "nats"}, "state": dict(EXITED, ExitCode=0), "log": ""},
            ],
            "control_plane": {
                "etcd": {"reachable": False, "healthy": False, "error": "<urlopen error [Errno 111] Connection refused>"},
                "nats": {"reachable": True, "healthy": False, "detail": '{"status":"unavailable"}'},
                "frontend": {"reachable": True, "healthy": True},
            },
        }
    }
    found = engine.triage(evidence(collected, plan={"control_plane": {"host": "tray0"}, "hosts": {}}), SIGS)
    assert [(f["code"], f["host"], f["container"]) for f in found] == [
        ("ETCD_UNREACHABLE", "tray0", "control-plane"),
        ("NATS_UNREACHABLE", "tray0", "control-plane"),
        ("NATS_UNREACHABLE", "tray0", "wideep-nats"),
    ]
    assert found[0]["evidence"] == ["etcd: unreachable (<urlopen error [Errno 111] Connection refused>)"]


def test_facts_sources() -> None:
    tray = {
        "gpu_count": 4,
        "imex": {"channels": []},
        "peermem": {"loaded": False},
        "dmabuf": {"supported": False},
        "hcas": [{"device": "mlx5_0", "port": 1, "state": "1: DOWN"}, {"device": "mlx5_1", "port": 1, "state": "4: ACTIVE"}],
    }
    collected = {"tray1": {"containers": [], "engines": [{"image": "sha256:abc", "sglang": "0.5.3", "dynamo": "0.6.1"}]}}
    plan = {"hosts": {"tray1": {"engine": {"sglang": "0.5.4", "dynamo": "0.6.1"}, "containers": []}}}
    found = engine.triage(evidence(collected, {"tray1": tray}, plan), SIGS)
    assert [(f["code"], f["container"]) for f in found] == [
        ("IMEX_CHANNEL_MISSING", "-"),
        ("GPUDIRECT_RDMA_MISSING", "-"),
        ("HCA_DOWN", "-"),
        ("IMAGE_OR_ENGINE_MISMATCH", "-"),
    ]
    assert found[2]["evidence"] == ["hca mlx5_0 port 1 not active: state 1: DOWN"]
    assert found[3]["evidence"] == ["engine: image sha256:abc reports sglang 0.5.3, the plan pins 0.5.4"]
    # a tray without GPUs (the emulated trays) gives no hardware facts
    assert engine.preflight_facts({"gpu_count": 0, "imex": {"channels": []}}) == []


def _broken_group() -> dict[str, Any]:
    """The emulated failure the cluster test provokes: rank 0's dist-init port is held, rank 1
    cannot join, NATS is fine."""
    return {
        "tray2": {"containers": [worker("wideep-prefill_0-rank1", (FIXTURES / "rendezvous_timeout.log").read_text(), EXITED, rank="1")]},
        "tray1": {"containers": [worker("wideep-prefill_0-rank0", (FIXTURES / "port_in_use.log").read_text(), EXITED)]},
        "tray3": {"containers": [worker("wideep-decode_0-rank0", (FIXTURES / "group_rank_lost.log").read_text(), EXITED)]},
    }


def test_order_is_causes_then_severity_then_file_then_host() -> None:
    found = engine.triage(evidence(_broken_group()), SIGS)
    assert [(f["code"], f["host"]) for f in found] == [
        ("PORT_IN_USE", "tray1"),
        ("RENDEZVOUS_TIMEOUT", "tray2"),
        ("GROUP_RANK_LOST", "tray3"),
    ]


def test_deterministic() -> None:
    """Same evidence, same output: twice, and with the input's dict order reversed."""
    first = engine.triage(evidence(_broken_group()), SIGS)
    again = engine.triage(evidence(dict(reversed(list(_broken_group().items())))), SIGS)
    assert json.dumps(first) == json.dumps(again)
    assert engine.table(first) == engine.table(again)


def test_table_names_cause_and_fix() -> None:
    lines = engine.table(engine.triage(evidence(_broken_group()), SIGS))
    assert lines[0] == "triage: 3 finding(s); likely cause: PORT_IN_USE, RENDEZVOUS_TIMEOUT"
    assert lines[1].split() == ["CODE", "HOST", "CONTAINER", "EVIDENCE"]
    assert lines[2].startswith("PORT_IN_USE") and "tray1" in lines[2] and "Address already in use" in lines[2]
    fixes = lines[lines.index("fix:") + 1 :]
    assert [line.split()[0] for line in fixes] == ["PORT_IN_USE", "RENDEZVOUS_TIMEOUT", "GROUP_RANK_LOST"]
    assert "ss -ltnp" in fixes[0]
    assert all(len(line) <= 160 for line in lines[1:5])
    long = engine.table([dict(engine.triage(evidence(_broken_group()), SIGS)[0], evidence=["x" * 300 + " the message"])])
    assert long[2].endswith("x the message") and "..." in long[2] and len(long[2]) == 160


def test_evidence_is_bounded() -> None:
    log = "".join(f"OSError: [Errno 98] Address already in use #{i} " + "x" * 1000 + "\n" for i in range(10))
    found = engine.triage(evidence({"t": {"containers": [worker("w", log, EXITED)]}}), SIGS)
    assert len(found[0]["evidence"]) == engine.MAX_EVIDENCE_LINES
    assert all(len(line) <= engine.MAX_EVIDENCE_CHARS for line in found[0]["evidence"])


@pytest.mark.parametrize(
    "mutate, problem",
    [
        (lambda d: d["signatures"][0].update(code="lower"), "UPPER_SNAKE_CASE"),
        (lambda d: d["signatures"][1].update(code=d["signatures"][0]["code"]), "used twice"),
        (lambda d: d["signatures"][0].update(kind="root"), "kind must be"),
        (lambda d: d["signatures"][0].update(severity="fatal"), "severity must be"),
        (lambda d: d["signatures"][0]["match"].append({"source": "dmesg", "regex": "x"}), "needs source"),
        (lambda d: d["signatures"][0]["match"].append({"source": "logs", "regex": "("}), "bad regex"),
        (lambda d: d["signatures"][0]["match"].append({"source": "state", "regex": "x", "with": "y"}), "source logs only"),
        (lambda d: d["signatures"][0].pop("fix"), r"fix \(text\) is missing"),
        (lambda d: d["signatures"][0].update(extra=1), "unknown keys"),
    ],
)
def test_bad_signatures_are_refused(mutate: Any, problem: str) -> None:
    data = copy.deepcopy(yaml.safe_load(engine.SIGNATURES_FILE.read_text(encoding="utf-8")))
    mutate(data)
    with pytest.raises(engine.SignatureError, match=problem):
        engine.parse_signatures(data)


# ---------------------------------------------------------------------------------------------
# Scrubbing (plugins/module_utils/_scrub.py): used on the tray (logs_info) and before writing.


def test_scrub_secret_values_and_shapes() -> None:
    secrets = secret_pairs({"HF_TOKEN": TOKEN, "SHORT": "abc"})
    text = (
        f"token={TOKEN} and again {TOKEN}\n"
        "Authorization: Bearer eyJhbGciOiJIUzI1NiJ9.payload.sig\n"
        "hf_" + "A1b2C3d4E5" * 4 + " leaked\n"
        "NATS_AUTH_PASSWORD=hunter2hunter2 ok\n"
        "abc stays (too short to be scrubbed as a value)\n"
    )
    out = scrub(text, secrets)
    assert TOKEN not in out and "eyJhbGciOiJIUzI1NiJ9" not in out and "A1b2C3d4E5" not in out and "hunter2" not in out
    assert out.startswith("token=[REDACTED:HF_TOKEN] and again [REDACTED:HF_TOKEN]\n"), "a value's marker keeps its name"
    assert "Bearer [REDACTED]" in out and "NATS_AUTH_PASSWORD=[REDACTED] ok" in out
    assert "abc stays" in out
    assert scrub("nothing secret here: hf_transfer, HF_HOME=/root/.cache", secrets) == "nothing secret here: hf_transfer, HF_HOME=/root/.cache"


def test_scrub_env_and_data() -> None:
    secrets = secret_pairs({"HF_TOKEN": TOKEN})
    env = ["HF_TOKEN=" + TOKEN, "MY_VALUE=" + TOKEN, "NCCL_MNNVL_ENABLE=1", "NATS_AUTH_TOKEN=s3cr3t-value"]
    assert scrub_env(env, secrets) == ["HF_TOKEN=[REDACTED]", "MY_VALUE=[REDACTED]", "NCCL_MNNVL_ENABLE=1", "NATS_AUTH_TOKEN=[REDACTED]"]
    data = {"a": [TOKEN, {"b": f"x {TOKEN} y"}], TOKEN: 1, "n": 3}
    assert TOKEN not in json.dumps(scrub_data(data, secrets))
    assert scrub_data(data, secrets)["n"] == 3


def test_findings_are_scrubbed_by_the_archive_path() -> None:
    """A matched line holding the token: the finding keeps the line, the archive scrubs it
    (logs_info scrubs on the tray already; logs_archive scrubs every finding again)."""
    log = f"OSError: [Errno 98] Address already in use (HF_TOKEN={TOKEN})\n"
    found = engine.triage(evidence({"t": {"containers": [worker("w", log, EXITED)]}}), SIGS)
    assert TOKEN in found[0]["evidence"][0]
    scrubbed = scrub_data(found, secret_pairs({"HF_TOKEN": TOKEN}))
    assert TOKEN not in json.dumps(scrubbed)
    assert scrubbed[0]["code"] == "PORT_IN_USE"


def test_operate_doc_lists_every_signature() -> None:
    doc = (Path(__file__).resolve().parents[2] / "docs" / "operate.md").read_text(encoding="utf-8")
    assert "## Logs" in doc and "## Triage" in doc
    missing = [s.code for s in SIGS if f"| `{s.code}` |" not in doc]
    assert not missing, f"docs/operate.md does not list {missing}"


def test_the_origin_comes_before_where_the_error_was_relayed() -> None:
    """Recorded on the emulated cluster: the prefill mocker cannot bind its bootstrap port; 9 s
    later the frontend's log relays the same error. Both match PORT_IN_USE; the worker, whose line
    is older, comes first although tray0 sorts before tray1."""
    relay = (FIXTURES / "port_in_use_frontend_relay.log").read_text(encoding="utf-8")
    origin = (FIXTURES / "port_in_use_mocker.log").read_text(encoding="utf-8")
    frontend = {"name": "wideep-frontend", "labels": {"wideep.gb200.kind": "frontend"}, "state": dict(RUNNING), "log": relay}
    found = engine.triage(evidence({"tray0": {"containers": [frontend]}, "tray1": {"containers": [worker("wideep-prefill_0-rank0", origin)]}}), SIGS)
    assert [(f["code"], f["host"]) for f in found] == [("PORT_IN_USE", "tray1"), ("PORT_IN_USE", "tray0")]
    assert "\x1b" not in "".join(found[0]["evidence"]), "colours are left out of the evidence"
    assert found[0]["evidence"][0].endswith("Failed to start mocker engine: Address already in use (os error 98)")
