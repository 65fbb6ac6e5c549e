#!/usr/bin/python
# Copyright (c) 2026 wideep.gb200 authors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

DOCUMENTATION = r"""
---
module: logs_info
short_description: Read a tray's wideep containers (logs, state), Docker, images and the control plane, scrubbed and bounded
description:
  - Lists the containers labelled C(wideep.gb200.kind) (every rank of every worker, the control plane,
    the frontend), and returns for each its Docker state, labels, image and the last O(tail) lines of
    its log (stdout and stderr, merged by time).
  - Also returns C(docker info), the images of those containers, optionally the engine versions a
    running worker's image reports, and optionally the control plane's state (etcd, NATS, frontend).
  - Every string is scrubbed on the tray before it is returned, the values of O(secrets) and anything
    shaped like a credential become a marker, and the logs are cut to O(max_bytes) per tray.
  - Reads only; it writes no file.
version_added: 0.2.0
author:
  - wideep.gb200 authors (@wideep-gb200)
extends_documentation_fragment:
  - wideep.gb200._attributes
  - wideep.gb200._attributes.info_module
  - wideep.gb200._attributes.posix
options:
  tail:
    description: Log lines read per container (the last ones).
    type: int
    default: 2000
  since:
    description:
      - Read only log lines written since then (C(docker logs --since), e.g. C(30m) or an RFC 3339 time);
        empty, no limit. A long-running container (the frontend) keeps relaying errors of an
        incident already fixed in its last O(tail) lines; this leaves them out.
    type: str
    default: ""
  max_bytes:
    description:
      - The most log bytes kept for this tray, all containers together. The largest logs are cut first,
        from their start (the end, where a failure is, stays); what was cut is returned in RV(cut).
    type: int
    default: 4194304
  secrets:
    description: Secret values to scrub (the values of gb200_secret_env), by name.
    type: dict
    default: {}
  engine_probe:
    description:
      - Ask one running worker container per image which sglang and ai-dynamo it holds
        (C(docker exec), a second at most each).
    type: bool
    default: true
  control_plane:
    description:
      - URLs to probe from this tray, given on the head only.
    type: dict
    suboptions:
      etcd_url:
        description: etcd's client URL (C(http://HEAD:2379)).
        type: str
      nats_monitor_url:
        description: NATS's monitoring URL (C(http://HEAD:8222)).
        type: str
      frontend_url:
        description: The Dynamo frontend's URL.
        type: str
  timeout:
    description: Seconds for each Docker command and each HTTP probe.
    type: int
    default: 20
notes:
  - The result's C(containers[].log) is already scrubbed; still, run the task with C(no_log) so that a
    long log is not printed at C(-v).
"""

EXAMPLES = r"""
- name: Read this tray's containers
  wideep.gb200.logs_info:
    tail: 500
    secrets: "{{ gb200_secret_env }}"
  register: collected
  no_log: true
"""

RETURN = r"""
containers:
  description: One entry per wideep container, by name.
  returned: always
  type: list
  elements: dict
  contains:
    name:
      description: Container name.
      type: str
    labels:
      description: Its C(wideep.gb200.*) labels.
      type: dict
    image:
      description: The image ID it runs.
      type: str
    state:
      description: Docker's C(State) (Status, Running, ExitCode, OOMKilled, Error, StartedAt, FinishedAt...).
      type: dict
    inspect:
      description: A scrubbed subset of C(docker inspect) (Config.Image, Cmd, Entrypoint, Env with secret values hidden, HostConfig).
      type: dict
    log:
      description: The last lines of its log, timestamps first, scrubbed.
      type: str
docker_info:
  description: C(docker info), scrubbed (registry and proxy settings removed).
  returned: always
  type: dict
images:
  description: The images of those containers (Id, RepoTags, RepoDigests, Created, Size).
  returned: always
  type: list
  elements: dict
engines:
  description: Per image probed, C({image, sglang, dynamo}).
  returned: always
  type: list
  elements: dict
control_plane:
  description: With O(control_plane), C({etcd, nats, frontend}), each C(reachable), C(healthy), C(detail).
  returned: when control_plane is given
  type: dict
cut:
  description: What was left out to respect O(max_bytes) and O(tail), one line each.
  returned: always
  type: list
  elements: str
errors:
  description: What could not be read (a Docker command that failed), one line each.
  returned: always
  type: list
  elements: str
"""

import base64
import contextlib
import json
from typing import Any

from ansible.module_utils.basic import AnsibleModule
from ansible.module_utils.urls import open_url

from ansible_collections.wideep.gb200.plugins.module_utils._scrub import scrub, scrub_data, scrub_env, secret_pairs

KIND_LABEL = "wideep.gb200.kind"
_ENGINE_PROBE = (
    "import importlib.metadata as m\n"
    "def v(n):\n"
    "    try:\n"
    "        return m.version(n)\n"
    "    except Exception:\n"
    "        return None\n"
    "print(__import__('json').dumps({'sglang': v('sglang'), 'dynamo': v('ai-dynamo')}))\n"
)
_DOCKER_INFO_KEYS = (
    "ID",
    "Name",
    "ServerVersion",
    "Driver",
    "DefaultRuntime",
    "Runtimes",
    "CgroupDriver",
    "CgroupVersion",
    "Containers",
    "ContainersRunning",
    "ContainersStopped",
    "Images",
    "NCPU",
    "MemTotal",
    "OperatingSystem",
    "OSType",
    "Architecture",
    "KernelVersion",
    "DockerRootDir",
    "LoggingDriver",
    "Warnings",
)


_HOST_CONFIG_KEYS = ("NetworkMode", "RestartPolicy", "Binds", "Devices", "Ulimits", "ShmSize", "IpcMode", "Privileged")


def _state(state: dict[str, Any]) -> dict[str, Any]:
    """Docker's State without the health check's log (its probes' output can be long)."""
    out = {k: v for k, v in state.items() if k != "Health"}
    if isinstance(state.get("Health"), dict):
        out["Health"] = {"Status": state["Health"].get("Status")}
    return out


def _docker(module: AnsibleModule, args: list[str], timeout: int) -> tuple[int, str, str]:
    # coreutils' timeout: a Docker daemon that hangs must not hang the collection.
    return module.run_command(["timeout", str(timeout), "docker", *args], environ_update={"LC_ALL": "C"}, check_rc=False)  # type: ignore[no-any-return]


def _merge_logs(stdout: str, stderr: str) -> list[str]:
    """stdout and stderr lines of ``docker logs --timestamps``, merged by their timestamps
    (a stable sort: lines of one stream keep their order)."""
    lines = [line for line in stdout.splitlines() if line] + [line for line in stderr.splitlines() if line]
    return sorted(lines, key=lambda line: line.split(" ", 1)[0])


def _cut_to_budget(logs: dict[str, list[str]], budget: int) -> list[str]:
    """Drop the oldest lines of the largest logs until all fit ``budget`` bytes; what was cut."""
    cut: list[str] = []
    sizes = {name: sum(len(line) + 1 for line in lines) for name, lines in logs.items()}
    total = sum(sizes.values())
    dropped = dict.fromkeys(logs, 0)
    while total > budget:
        name = max(sorted(sizes), key=lambda n: sizes[n])  # the largest, ties by name
        if not logs[name]:
            break
        line = logs[name].pop(0)
        sizes[name] -= len(line) + 1
        total -= len(line) + 1
        dropped[name] += 1
    cut += [f"{name}: the oldest {dropped[name]} log lines left out (max_bytes {budget} per tray)" for name in sorted(dropped) if dropped[name]]
    return cut


def _http(url: str, timeout: int, data: bytes | None = None) -> tuple[bool, int, str, str]:
    """(reachable, status, body, error) of one request."""
    try:
        response = open_url(
            url,
            data=data,
            method="POST" if data is not None else "GET",
            timeout=timeout,
            headers={"Content-Type": "application/json"} if data is not None else None,
        )
        return True, int(response.getcode()), response.read(65536).decode("utf-8", "replace"), ""
    except Exception as exc:  # pylint: disable=broad-except  # every failure is a finding, not a crash
        code = getattr(exc, "code", None)
        if isinstance(code, int):
            body = ""
            with contextlib.suppress(Exception):
                body = exc.read(4096).decode("utf-8", "replace")  # type: ignore[attr-defined]
            return True, code, body, str(exc)
        return False, 0, "", str(exc)


def _control_plane(urls: dict[str, Any], timeout: int) -> dict[str, Any]:
    out: dict[str, Any] = {}
    etcd = (urls.get("etcd_url") or "").rstrip("/")
    if etcd:
        reachable, status, body, error = _http(f"{etcd}/health", timeout)
        healthy = reachable and status == 200 and '"health":"true"' in body.replace(" ", "")
        item: dict[str, Any] = {"reachable": reachable, "healthy": healthy, "detail": body.strip()[:300] or error, "error": error}
        if reachable:
            ok, _status, members, _error = _http(f"{etcd}/v3/cluster/member/list", timeout, b"{}")
            if ok:
                with contextlib.suppress(ValueError):
                    item["members"] = len(json.loads(members).get("members") or [])
            zero = base64.b64encode(b"\0").decode()
            ok, _status, keys, _error = _http(f"{etcd}/v3/kv/range", timeout, json.dumps({"key": zero, "range_end": zero, "count_only": True}).encode())
            if ok:
                with contextlib.suppress(ValueError):
                    item["keys"] = int(json.loads(keys).get("count") or 0)
        out["etcd"] = item
    nats = (urls.get("nats_monitor_url") or "").rstrip("/")
    if nats:
        reachable, status, body, error = _http(f"{nats}/healthz", timeout)
        item = {"reachable": reachable, "healthy": reachable and status == 200, "detail": body.strip()[:300] or error, "error": error}
        if reachable:
            ok, _status, varz, _error = _http(f"{nats}/varz", timeout)
            if ok:
                try:
                    data = json.loads(varz)
                    item["varz"] = {k: data.get(k) for k in ("server_name", "version", "uptime", "connections", "in_msgs", "out_msgs", "slow_consumers")}
                    item["jetstream"] = bool(data.get("jetstream"))
                except ValueError:
                    pass
        out["nats"] = item
    frontend = (urls.get("frontend_url") or "").rstrip("/")
    if frontend:
        reachable, status, body, error = _http(f"{frontend}/health", timeout)
        item = {"reachable": reachable, "healthy": reachable and status == 200, "detail": body.strip()[:2000] or error, "error": error}
        out["frontend"] = item
    return out


def main() -> None:
    module = AnsibleModule(
        argument_spec={
            "tail": {"type": "int", "default": 2000},
            "since": {"type": "str", "default": ""},
            "max_bytes": {"type": "int", "default": 4194304},
            "secrets": {"type": "dict", "default": {}, "no_log": True},
            "engine_probe": {"type": "bool", "default": True},
            "control_plane": {
                "type": "dict",
                "options": {"etcd_url": {"type": "str"}, "nats_monitor_url": {"type": "str"}, "frontend_url": {"type": "str"}},
            },
            "timeout": {"type": "int", "default": 20},
        },
        supports_check_mode=True,
    )
    params = module.params
    secrets = secret_pairs(params["secrets"])
    timeout = int(params["timeout"])
    errors: list[str] = []
    cut: list[str] = []

    rc, out, err = _docker(module, ["ps", "--all", "--filter", f"label={KIND_LABEL}", "--format", "{{.Names}}"], timeout)
    if rc != 0:
        module.fail_json(msg=f"docker ps failed (is the Docker engine running?): {scrub(err.strip(), secrets)}")
    names = sorted(set(out.split()))

    inspected: list[dict[str, Any]] = []
    if names:
        rc, out, err = _docker(module, ["container", "inspect", *names], timeout)
        if rc == 0:
            inspected = json.loads(out)
        else:
            errors.append(f"docker container inspect: {err.strip()}")

    logs: dict[str, list[str]] = {}
    for item in inspected:
        name = str(item.get("Name", "")).lstrip("/")
        since = ["--since", params["since"]] if params["since"] else []
        rc, out, err = _docker(module, ["logs", "--timestamps", "--tail", str(params["tail"]), *since, name], timeout)
        if rc != 0 and not out:
            errors.append(f"docker logs {name}: {err.strip()}")
            logs[name] = []
            continue
        lines = _merge_logs(out, err)
        if len(lines) >= int(params["tail"]):
            cut.append(f"{name}: only the last {params['tail']} log lines read (tail)")
        logs[name] = [scrub(line, secrets) for line in lines]
    cut += _cut_to_budget(logs, int(params["max_bytes"]))

    containers: list[dict[str, Any]] = []
    image_ids: list[str] = []
    probe_targets: dict[str, str] = {}
    for item in sorted(inspected, key=lambda i: str(i.get("Name"))):
        name = str(item.get("Name", "")).lstrip("/")
        config = item.get("Config") or {}
        labels = {k: v for k, v in (config.get("Labels") or {}).items() if k.startswith("wideep.gb200.")}
        host_config = item.get("HostConfig") or {}
        image = str(item.get("Image", ""))
        if image and image not in image_ids:
            image_ids.append(image)
        state = item.get("State") or {}
        if labels.get(KIND_LABEL) == "worker" and state.get("Running") and image not in probe_targets:
            probe_targets[image] = name
        containers.append(
            {
                "name": name,
                "labels": labels,
                "image": image,
                "state": scrub_data(_state(state), secrets),
                "inspect": scrub_data(
                    {
                        "Id": item.get("Id"),
                        "Created": item.get("Created"),
                        "RestartCount": item.get("RestartCount"),
                        "Config": {
                            "Image": config.get("Image"),
                            "Entrypoint": config.get("Entrypoint"),
                            "Cmd": config.get("Cmd"),
                            "Env": scrub_env([str(e) for e in config.get("Env") or []], secrets),
                            "Labels": config.get("Labels") or {},
                        },
                        "HostConfig": {k: host_config.get(k) for k in _HOST_CONFIG_KEYS},
                    },
                    secrets,
                ),
                "log": "\n".join(logs.get(name, [])) + ("\n" if logs.get(name) else ""),
            }
        )

    docker_info: dict[str, Any] = {}
    rc, out, err = _docker(module, ["info", "--format", "{{json .}}"], timeout)
    if rc == 0:
        try:
            full = json.loads(out)
            docker_info = scrub_data({k: full.get(k) for k in _DOCKER_INFO_KEYS if k in full}, secrets)
        except ValueError:
            errors.append("docker info: not JSON")
    else:
        errors.append(f"docker info: {err.strip()}")

    images: list[dict[str, Any]] = []
    if image_ids:
        rc, out, err = _docker(module, ["image", "inspect", *image_ids], timeout)
        if rc == 0:
            images = [{k: image.get(k) for k in ("Id", "RepoTags", "RepoDigests", "Created", "Size", "Architecture")} for image in json.loads(out)]
        else:
            errors.append(f"docker image inspect: {err.strip()}")

    engines: list[dict[str, Any]] = []
    if params["engine_probe"]:
        for image, name in sorted(probe_targets.items()):
            rc, out, err = _docker(module, ["exec", name, "python3", "-c", _ENGINE_PROBE], timeout)
            try:
                versions = json.loads(out.strip().splitlines()[-1]) if rc == 0 and out.strip() else {}
            except ValueError:
                versions = {}
            if versions:
                engines.append({"image": image, "container": name, "sglang": versions.get("sglang"), "dynamo": versions.get("dynamo")})
            else:
                errors.append(f"engine versions from {name}: {err.strip() or 'no answer'}")

    result: dict[str, Any] = {
        "containers": containers,
        "docker_info": docker_info,
        "images": images,
        "engines": engines,
        "cut": cut,
        "errors": [scrub(e, secrets) for e in errors],
    }
    if params["control_plane"]:
        result["control_plane"] = scrub_data(_control_plane(params["control_plane"], timeout), secrets)
    module.exit_json(changed=False, **result)


if __name__ == "__main__":
    main()
