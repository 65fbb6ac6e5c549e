# Copyright (c) 2026 wideep.gb200 authors
# Apache License 2.0 (see LICENSES/Apache-2.0.txt or https://www.apache.org/licenses/LICENSE-2.0)
"""Deterministic triage: known failure signatures (signatures.yml, data) matched against the
evidence that wideep.gb200.logs collects from the trays.

Evidence (``Evidence``) is plain data: per tray its containers (name, labels, Docker State, the
scrubbed log tail) and fact lines; the control plane's lines. ``evidence_from_collected`` builds it
from what the logs role gathered (logs_info per tray, gpu_info per worker tray, the plan).
``triage`` returns findings ordered by (cause before symptom, severity, the signature's place in
the file, host, container): the same evidence always gives the same findings in the same order.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypedDict

import yaml

SIGNATURES_FILE = Path(__file__).with_name("signatures.yml")
SOURCES = ("logs", "state", "control_plane", "facts")
KINDS = ("cause", "symptom")
SEVERITIES = ("critical", "error", "warning")
# A finding keeps at most this many matched lines, each at most this long.
MAX_EVIDENCE_LINES = 3
MAX_EVIDENCE_CHARS = 400
CONTROL_PLANE = "control-plane"
TRAY = "-"  # the container column of a finding about the tray itself (facts)
# The timestamp `docker logs --timestamps` puts first: kept in triage.json, left out of the table.
_DOCKER_TIME = re.compile(r"^\d{4}-\d\d-\d\dT[\d:.]+Z ")
# Terminal colours (Dynamo's Rust logger prints them into docker logs): matched and shown without.
_ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")


class Finding(TypedDict):
    code: str
    host: str
    container: str
    evidence: list[str]
    fix: str
    title: str
    kind: str
    severity: str


class ContainerEvidence(TypedDict):
    name: str
    state_line: str
    log: str


class HostEvidence(TypedDict):
    containers: list[ContainerEvidence]
    facts: list[str]


class Evidence(TypedDict):
    hosts: dict[str, HostEvidence]
    control_plane_host: str
    control_plane: list[str]


class SignatureError(ValueError):
    """signatures.yml is malformed (every problem, one per line)."""


@dataclass(frozen=True)
class Matcher:
    source: str
    regex: re.Pattern[str]
    with_: re.Pattern[str] | None


@dataclass(frozen=True)
class Signature:
    code: str
    title: str
    kind: str
    severity: str
    matchers: tuple[Matcher, ...]
    fix: str
    source: str
    only_if_unexplained: bool


def parse_signatures(data: Any) -> tuple[Signature, ...]:
    """The signatures of a loaded signatures.yml, checked; SignatureError lists every problem."""
    problems: list[str] = []
    items = data.get("signatures") if isinstance(data, dict) else None
    if not isinstance(items, list) or not items:
        raise SignatureError("signatures.yml: a mapping with a non-empty list `signatures` is expected")
    result: list[Signature] = []
    seen: set[str] = set()
    for index, item in enumerate(items):
        where = f"signatures[{index}]"
        if not isinstance(item, dict):
            problems.append(f"{where}: a mapping is expected")
            continue
        code = str(item.get("code") or "")
        where = f"{where} ({code or 'no code'})"
        if not re.fullmatch(r"[A-Z][A-Z0-9_]+", code):
            problems.append(f"{where}: code must be UPPER_SNAKE_CASE")
        if code in seen:
            problems.append(f"{where}: code is used twice")
        seen.add(code)
        unknown = set(item) - {"code", "title", "kind", "severity", "match", "fix", "source", "only_if_unexplained"}
        if unknown:
            problems.append(f"{where}: unknown keys {sorted(unknown)}")
        problems += [f"{where}: {key} (text) is missing" for key in ("title", "fix", "source") if not isinstance(item.get(key), str) or not item[key].strip()]
        if item.get("kind") not in KINDS:
            problems.append(f"{where}: kind must be one of {list(KINDS)}")
        if item.get("severity") not in SEVERITIES:
            problems.append(f"{where}: severity must be one of {list(SEVERITIES)}")
        matchers: list[Matcher] = []
        entries = item.get("match")
        if not isinstance(entries, list) or not entries:
            problems.append(f"{where}: match must be a non-empty list")
            entries = []
        for m_index, entry in enumerate(entries):
            m_where = f"{where} match[{m_index}]"
            if not isinstance(entry, dict) or entry.get("source") not in SOURCES or not isinstance(entry.get("regex"), str):
                problems.append(f"{m_where}: needs source (one of {list(SOURCES)}) and regex")
                continue
            if set(entry) - {"source", "regex", "with"}:
                problems.append(f"{m_where}: unknown keys {sorted(set(entry) - {'source', 'regex', 'with'})}")
            if "with" in entry and entry["source"] != "logs":
                problems.append(f"{m_where}: `with` applies to source logs only")
            try:
                regex = re.compile(entry["regex"])
                with_ = re.compile(entry["with"]) if isinstance(entry.get("with"), str) else None
            except re.error as exc:
                problems.append(f"{m_where}: bad regex: {exc}")
                continue
            matchers.append(Matcher(entry["source"], regex, with_))
        if not problems:
            result.append(
                Signature(
                    code=code,
                    title=" ".join(str(item["title"]).split()),
                    kind=str(item["kind"]),
                    severity=str(item["severity"]),
                    matchers=tuple(matchers),
                    fix=" ".join(str(item["fix"]).split()),
                    source=" ".join(str(item["source"]).split()),
                    only_if_unexplained=bool(item.get("only_if_unexplained", False)),
                )
            )
    if problems:
        raise SignatureError("\n".join(problems))
    return tuple(result)


def load_signatures(path: Path = SIGNATURES_FILE) -> tuple[Signature, ...]:
    with path.open(encoding="utf-8") as handle:
        return parse_signatures(yaml.safe_load(handle))


# ---------------------------------------------------------------------------------------------
# Evidence: lines built from structured data, so that signatures stay regexes over text.


def state_line(labels: Mapping[str, Any], state: Mapping[str, Any] | None) -> str:
    """``kind=K worker=W rank=R status=S exit_code=N oom_killed=B error=E`` for one container
    (``status=missing`` when the plan has it and Docker does not)."""
    kind = labels.get("wideep.gb200.kind", "?")
    worker = labels.get("wideep.gb200.worker", "-")
    rank = labels.get("wideep.gb200.rank", "-")
    if state is None:
        return f"kind={kind} worker={worker} rank={rank} status=missing exit_code=- oom_killed=false error="
    status = str(state.get("Status", "unknown"))
    oom = "true" if state.get("OOMKilled") else "false"
    error = " ".join(str(state.get("Error") or "").split())
    return f"kind={kind} worker={worker} rank={rank} status={status} exit_code={state.get('ExitCode', '-')} oom_killed={oom} error={error}"


def preflight_facts(tray: Mapping[str, Any] | None) -> list[str]:
    """Fact lines from a tray's gpu_info result. Only trays with GPUs give hardware facts: a tray
    without nvidia-smi (the emulated trays) says nothing about IMEX, RDMA or HCAs."""
    if not isinstance(tray, Mapping) or not int(tray.get("gpu_count") or 0):
        return []
    lines: list[str] = []
    imex = tray.get("imex") or {}
    if isinstance(imex, Mapping) and not imex.get("channels"):
        lines.append("imex: no channel under /dev/nvidia-caps-imex-channels")
    peermem = (tray.get("peermem") or {}).get("loaded") if isinstance(tray.get("peermem"), Mapping) else None
    dmabuf = (tray.get("dmabuf") or {}).get("supported") if isinstance(tray.get("dmabuf"), Mapping) else None
    if peermem is False and dmabuf is False:
        lines.append("gpudirect: nvidia_peermem not loaded and DMA-BUF not supported")
    for hca in tray.get("hcas") or []:
        if not isinstance(hca, Mapping):
            continue
        state = str(hca.get("state") or "")
        if "ACTIVE" not in state.upper():
            lines.append(f"hca {hca.get('device', '?')} port {hca.get('port', '?')} not active: state {state or 'unknown'}")
    return lines


def engine_facts(reported: Mapping[str, Any] | None, planned: Mapping[str, Any] | None) -> list[str]:
    """``engine: image I reports sglang A, the plan pins B`` for each engine that differs.
    ``reported`` is {"image": id, "sglang": v, "dynamo": v} (what the running image says)."""
    if not isinstance(reported, Mapping) or not isinstance(planned, Mapping):
        return []
    lines = []
    for name in ("sglang", "dynamo"):
        have, want = reported.get(name), planned.get(name)
        if have and want and str(have) != str(want):
            lines.append(f"engine: image {reported.get('image', '?')} reports {name} {have}, the plan pins {want}")
    return lines


def control_plane_lines(probe: Mapping[str, Any] | None) -> list[str]:
    """``etcd: healthy``, ``nats: unreachable (...)``... from logs_info's control-plane probe."""
    if not isinstance(probe, Mapping):
        return []
    lines = []
    for name in ("etcd", "nats", "frontend"):
        item = probe.get(name)
        if not isinstance(item, Mapping):
            continue
        if item.get("reachable") is False:
            lines.append(f"{name}: unreachable ({' '.join(str(item.get('error', '')).split())})")
        elif item.get("healthy") is False:
            lines.append(f"{name}: unhealthy ({' '.join(str(item.get('detail', '')).split())})")
        else:
            lines.append(f"{name}: healthy")
    return lines


def evidence_from_collected(
    collected: Mapping[str, Mapping[str, Any]],
    preflight: Mapping[str, Any],
    plan: Mapping[str, Any] | None,
) -> Evidence:
    """Evidence from what the logs role gathered: ``collected`` = {host: logs_info result},
    ``preflight`` = {host: gpu_info result}, ``plan`` = gb200_plan (for the planned containers,
    which are ``missing`` when Docker does not have them, and the pinned engine versions)."""
    hosts: dict[str, HostEvidence] = {}
    plan_hosts = (plan or {}).get("hosts") or {}
    cp_host = str(((plan or {}).get("control_plane") or {}).get("host") or "")
    cp_lines: list[str] = []
    for host in sorted(set(collected) | set(plan_hosts)):
        result = collected.get(host) or {}
        containers: list[ContainerEvidence] = []
        present = set()
        for item in sorted(result.get("containers") or [], key=lambda c: str(c.get("name"))):
            present.add(str(item.get("name")))
            containers.append(
                {
                    "name": str(item.get("name")),
                    "state_line": state_line(item.get("labels") or {}, item.get("state") or {}),
                    "log": str(item.get("log") or ""),
                }
            )
        if result:  # a tray that answered: what the plan has and Docker lacks is missing
            planned = sorted((plan_hosts.get(host) or {}).get("containers") or [], key=lambda c: str(c.get("name")))
            containers += [
                {"name": str(spec.get("name")), "state_line": state_line(spec.get("labels") or {}, None), "log": ""}
                for spec in planned
                if str(spec.get("name")) not in present
            ]
        facts = preflight_facts(preflight.get(host))
        planned_engine = (plan_hosts.get(host) or {}).get("engine")
        for reported in result.get("engines") or []:
            facts += engine_facts(reported, planned_engine)
        hosts[host] = {"containers": containers, "facts": facts}
        if result.get("control_plane"):
            cp_host = cp_host or host
            cp_lines = control_plane_lines(result.get("control_plane"))
    return {"hosts": hosts, "control_plane_host": cp_host, "control_plane": cp_lines}


# ---------------------------------------------------------------------------------------------
# Matching


def _clip(line: str) -> str:
    line = line.rstrip()
    return line if len(line) <= MAX_EVIDENCE_CHARS else line[: MAX_EVIDENCE_CHARS - 3] + "..."


def _matches(signature: Signature, sources: Mapping[str, Sequence[str]], log: str) -> list[str]:
    """The lines of ``sources`` that ``signature`` matches (in source order, distinct, clipped)."""
    found: list[str] = []
    for matcher in signature.matchers:
        lines = sources.get(matcher.source) or ()
        if matcher.with_ is not None and not matcher.with_.search(log):
            continue
        for line in lines:
            if matcher.regex.search(line):
                clipped = _clip(line)
                if clipped not in found:
                    found.append(clipped)
                if len(found) >= MAX_EVIDENCE_LINES:
                    return found
    return found


def _finding(signature: Signature, host: str, container: str, evidence: list[str]) -> Finding:
    return {
        "code": signature.code,
        "host": host,
        "container": container,
        "evidence": evidence,
        "fix": signature.fix,
        "title": signature.title,
        "kind": signature.kind,
        "severity": signature.severity,
    }


def triage(evidence: Evidence, signatures: Sequence[Signature] | None = None) -> list[Finding]:
    """Every signature that matches, once per (code, host, container), in a fixed order: causes
    first, then severity, the signature's place in the file, the time of its first log line, host,
    container."""
    sigs = tuple(signatures) if signatures is not None else load_signatures()
    order = {sig.code: index for index, sig in enumerate(sigs)}
    findings: list[Finding] = []
    for host in sorted(evidence["hosts"]):
        record = evidence["hosts"][host]
        for container in record["containers"]:
            log = _ANSI.sub("", container["log"])
            sources = {"logs": log.splitlines(), "state": [container["state_line"]]}
            explained = False
            for sig in sigs:
                if sig.only_if_unexplained:
                    continue
                lines = _matches(sig, sources, log)
                if lines:
                    explained = True
                    findings.append(_finding(sig, host, container["name"], lines))
            if not explained:
                for sig in sigs:
                    if sig.only_if_unexplained:
                        lines = _matches(sig, sources, log)
                        if lines:
                            findings.append(_finding(sig, host, container["name"], lines))
        if record["facts"]:
            for sig in sigs:
                lines = _matches(sig, {"facts": record["facts"]}, "")
                if lines:
                    findings.append(_finding(sig, host, TRAY, lines))
    if evidence["control_plane"]:
        for sig in sigs:
            lines = _matches(sig, {"control_plane": evidence["control_plane"]}, "")
            if lines:
                findings.append(_finding(sig, evidence["control_plane_host"] or "?", CONTROL_PLANE, lines))
    findings.sort(key=lambda f: (KINDS.index(f["kind"]), SEVERITIES.index(f["severity"]), order[f["code"]], _first_seen(f), f["host"], f["container"]))
    return findings


def _first_seen(finding: Finding) -> str:
    """When the finding's first log line was written (Docker's timestamp), so that of two findings
    with the same code the origin comes before the places the error was relayed to (a worker's
    bind failure before the frontend's report of it); findings without a time (state, facts,
    control plane) after those with one."""
    stamp = _DOCKER_TIME.match(finding["evidence"][0]) if finding["evidence"] else None
    return stamp.group(0) if stamp else "~"


def table(findings: Sequence[Finding], width: int = 160) -> list[str]:
    """A short text table: one row per finding (code, host, container, first evidence line), then
    each code's fix once. Lines, so that Ansible's debug prints them one per line."""
    if not findings:
        return ["triage: no known failure signature matched"]
    causes = sorted({f["code"] for f in findings if f["kind"] == "cause"}, key=[f["code"] for f in findings].index)
    head = f"triage: {len(findings)} finding(s); likely cause: {', '.join(causes) if causes else 'unknown (symptoms only)'}"
    rows = [("CODE", "HOST", "CONTAINER", "EVIDENCE")] + [
        (f["code"], f["host"], f["container"], _DOCKER_TIME.sub("", f["evidence"][0]) if f["evidence"] else "") for f in findings
    ]
    widths = [max(len(r[i]) for r in rows) for i in range(3)]
    lines = [head]
    for row in rows:
        prefix = "  ".join(row[i].ljust(widths[i]) for i in range(3)) + "  "
        room = max(width - len(prefix), 20)
        # A log line's message is at its end: keep the end when it does not fit.
        lines.append(prefix + (row[3] if len(row[3]) <= room else "..." + row[3][-(room - 3) :]))
    lines.append("fix:")
    done: set[str] = set()
    for f in findings:
        if f["code"] not in done:
            done.add(f["code"])
            lines.append(f"  {f['code']} ({f['title']}): {f['fix']}")
    return lines
