# Copyright (c) 2026 wideep.gb200 authors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Triage what the logs role collected and write it, scrubbed, into one archive on the controller."""

from __future__ import annotations

import io
import json
import os
import tarfile
import time
from pathlib import Path
from typing import Any

from ansible.plugins.action import ActionBase

from ansible_collections.wideep.gb200.plugins.module_utils._scrub import scrub, scrub_data, secret_pairs
from ansible_collections.wideep.gb200.plugins.plugin_utils.triage.engine import (
    SIGNATURES_FILE,
    SignatureError,
    evidence_from_collected,
    load_signatures,
    table,
    triage,
)

# gpu_info's result minus what Ansible adds to every result.
_ANSIBLE_KEYS = {"invocation", "changed", "failed", "skipped", "skip_reason", "_ansible_no_log", "msg", "warnings", "deprecations"}


def _safe_name(name: str) -> str:
    return "".join(c if c.isalnum() or c in "._-" else "_" for c in name) or "_"


class ActionModule(ActionBase):
    _VALID_ARGS = frozenset(("hosts", "collected_var", "preflight_var", "dest", "signatures", "limits"))
    _requires_connection = False
    TRANSFERS_FILES = False

    def run(self, tmp: Any = None, task_vars: dict[str, Any] | None = None) -> dict[str, Any]:
        result = super().run(tmp, task_vars)
        task_vars = task_vars or {}
        args = self._task.args
        hosts = [str(h) for h in args.get("hosts") or []]
        collected_var = str(args.get("collected_var") or "logs_collected")
        preflight_var = str(args.get("preflight_var") or "logs_preflight")
        dest = str(args.get("dest") or "")
        limits = args.get("limits") or {}
        # The secrets are read here, never passed as an argument (which -vvv would print).
        secrets = secret_pairs(self._templar.template(task_vars.get("gb200_secret_env") or {}))
        hostvars = task_vars.get("hostvars") or {}
        plan = self._templar.template(task_vars.get("gb200_plan")) if task_vars.get("gb200_plan") is not None else None

        collected: dict[str, dict[str, Any]] = {}
        preflight: dict[str, Any] = {}
        not_collected: list[str] = []
        for host in sorted(hosts):
            hv = hostvars.get(host) or {}
            item = hv.get(collected_var)
            if isinstance(item, dict) and not item.get("failed") and "containers" in item:
                collected[host] = scrub_data({k: v for k, v in item.items() if k not in _ANSIBLE_KEYS}, secrets)
            else:
                reason = (item or {}).get("msg", "not reached") if isinstance(item, dict) else "not reached"
                not_collected.append(f"{host}: {scrub(str(reason), secrets)}")
            pf = hv.get(preflight_var)
            if isinstance(pf, dict) and not pf.get("skipped"):
                preflight[host] = scrub_data({k: v for k, v in pf.items() if k not in _ANSIBLE_KEYS}, secrets)

        try:
            signatures = load_signatures(Path(args["signatures"]) if args.get("signatures") else SIGNATURES_FILE)
        except (OSError, SignatureError) as exc:
            result.update(failed=True, msg=f"the triage signatures cannot be read: {exc}")
            return result
        evidence = evidence_from_collected(collected, preflight, plan)
        findings = [scrub_data(f, secrets) for f in triage(evidence, signatures)]
        lines = [scrub(line, secrets) for line in table(findings)]
        if not_collected:
            lines.append("not collected: " + "; ".join(not_collected))
        result.update(findings=findings, table=lines, not_collected=not_collected, changed=False)
        if not dest:
            result["msg"] = "triage only (no gb200_logs_dir given, no archive written)"
            return result

        stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
        # Relative to where the user ran ansible-playbook (this code runs in that process).
        directory = Path(os.path.expanduser(dest))
        if not directory.is_absolute():
            directory = Path(os.getcwd()) / directory
        archive = directory / f"{stamp}.tar.gz"
        suffix = 1
        while archive.exists():
            archive = directory / f"{stamp}-{suffix}.tar.gz"
            suffix += 1
        result.update(archive=str(archive), triage_json=str(directory / "triage.json"), changed=True)
        if self._task.check_mode:
            result["msg"] = f"would write {archive} and {directory / 'triage.json'}"
            return result

        files: dict[str, bytes] = {}

        def put(name: str, data: Any) -> None:
            text = data if isinstance(data, str) else json.dumps(data, indent=2, sort_keys=True) + "\n"
            files[name] = scrub(text, secrets).encode("utf-8")

        cut: dict[str, list[str]] = {}
        for host in sorted(collected):
            item = collected[host]
            base = _safe_name(host)
            inspect = {}
            for container in item.get("containers") or []:
                name = _safe_name(str(container.get("name")))
                put(f"{base}/{name}.log", str(container.get("log") or ""))
                inspect[str(container.get("name"))] = {k: container.get(k) for k in ("labels", "image", "state", "inspect")}
            put(f"{base}/inspect.json", inspect)
            put(f"{base}/docker-info.json", item.get("docker_info") or {})
            put(f"{base}/images.json", {"images": item.get("images") or [], "engines": item.get("engines") or []})
            if item.get("errors"):
                put(f"{base}/errors.json", item["errors"])
            if item.get("cut"):
                cut[host] = list(item["cut"])
            if host in preflight:
                put(f"{base}/preflight.json", preflight[host])
            if item.get("control_plane"):
                put("control_plane.json", {"host": host, **item["control_plane"]})
        for host in sorted(set(preflight) - set(collected)):
            put(f"{_safe_name(host)}/preflight.json", preflight[host])
        if plan is not None:
            put("plan.json", plan)
        put("triage.json", findings)
        put("triage.txt", "\n".join(lines) + "\n")
        manifest = {
            "created": stamp,
            "hosts": sorted(collected),
            "not_collected": not_collected,
            "limits": limits,
            "cut": cut,
            "secrets": "every value of gb200_secret_env and every credential-shaped string replaced by [REDACTED...]",
            "files": sorted(files),
        }
        put("MANIFEST.json", manifest)

        directory.mkdir(parents=True, exist_ok=True)
        partial = archive.with_name(f".{archive.name}.partial")
        try:
            with tarfile.open(partial, "w:gz") as tar:
                for name in sorted(files):
                    info = tarfile.TarInfo(f"{archive.name[: -len('.tar.gz')]}/{name}")
                    info.size = len(files[name])
                    info.mode = 0o600
                    info.mtime = int(time.time())
                    tar.addfile(info, io.BytesIO(files[name]))
            os.chmod(partial, 0o600)
            os.replace(partial, archive)
            triage_tmp = directory / ".triage.json.partial"
            triage_tmp.write_bytes(files["triage.json"])
            os.chmod(triage_tmp, 0o600)
            os.replace(triage_tmp, directory / "triage.json")
        except OSError as exc:
            partial.unlink(missing_ok=True)
            result.update(failed=True, msg=f"cannot write {archive}: {exc}")
            return result
        size = archive.stat().st_size
        result.update(archive_bytes=size, files=len(files), msg=f"wrote {archive} ({len(files)} files, {size} bytes) and {directory / 'triage.json'}")
        return result
