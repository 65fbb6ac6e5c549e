"""Helpers for the emulated-cluster tests: playbook runs, trays over SSH, container state."""

from __future__ import annotations

import json
import os
import re
import shlex
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
EMULATED_HOSTS = ROOT / "build" / "emulated" / "hosts.yml"
EMULATED_GROUP_VARS = ROOT / "inventories" / "emulated"
COLLECTIONS_PATH = ROOT / "build" / "pythonpath"
KIND_LABEL = "wideep.gb200.kind"
PLAYBOOK_TIMEOUT_S = 900
_RECAP_LINE = re.compile(r"^(?P<host>\S+)\s+:\s+(?P<counts>(?:[a-z]+=\d+\s*)+)$")
_COUNT = re.compile(r"([a-z]+)=(\d+)")


def tool(name: str) -> str:
    """An executable of the virtualenv running pytest, else from PATH."""
    candidate = Path(sys.executable).parent / name
    return str(candidate) if candidate.exists() else name


def ansible_env() -> dict[str, str]:
    return {
        **os.environ,
        "ANSIBLE_COLLECTIONS_PATH": str(COLLECTIONS_PATH),
        "ANSIBLE_NOCOLOR": "1",
        "ANSIBLE_FORCE_COLOR": "0",
    }


@dataclass(frozen=True)
class PlaybookRun:
    """One ansible-playbook run: exit status, stdout + stderr, and the PLAY RECAP counters."""

    command: list[str]
    rc: int
    output: str

    @property
    def recap(self) -> dict[str, dict[str, int]]:
        counters: dict[str, dict[str, int]] = {}
        in_recap = False
        for line in self.output.splitlines():
            if line.startswith("PLAY RECAP"):
                in_recap = True
                continue
            match = _RECAP_LINE.match(line.strip()) if in_recap else None
            if match:
                counters[match["host"]] = {key: int(value) for key, value in _COUNT.findall(match["counts"])}
        return counters

    def describe(self, lines: int = 80) -> str:
        tail = "\n".join(self.output.splitlines()[-lines:])
        return f"{shlex.join(self.command)} exited {self.rc}; last {lines} lines:\n{tail}"


def run_playbook(name: str, *args: str, inventories: tuple[Path, ...] = (EMULATED_HOSTS, EMULATED_GROUP_VARS)) -> PlaybookRun:
    """Run playbook wideep.gb200.NAME from this checkout (ANSIBLE_COLLECTIONS_PATH=build/pythonpath)."""
    command = [tool("ansible-playbook"), f"wideep.gb200.{name}"]
    for inventory in inventories:
        command += ["-i", str(inventory)]
    command += list(args)
    proc = subprocess.run(
        command,
        cwd=ROOT,
        env=ansible_env(),
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=PLAYBOOK_TIMEOUT_S,
        check=False,
    )
    return PlaybookRun(command=command, rc=proc.returncode, output=proc.stdout + proc.stderr)


@dataclass(frozen=True)
class Tray:
    """One emulated tray: its inventory name, address and a testinfra host over SSH."""

    name: str
    address: str
    host: Any  # testinfra.host.Host

    def docker(self, *args: str) -> str:
        result = self.host.run(shlex.join(["docker", *args]))
        assert result.rc == 0, f"{self.name}: docker {shlex.join(args)} exited {result.rc}: {result.stderr.strip()}"
        return str(result.stdout)

    def containers(self) -> dict[str, dict[str, Any]]:
        """Every container on the tray, in any state, as `docker inspect` describes it, by name."""
        ids = self.docker("ps", "--all", "--quiet", "--no-trunc").split()
        if not ids:
            return {}
        return {info["Name"].lstrip("/"): info for info in json.loads(self.docker("inspect", *ids))}

    def labelled_containers(self) -> list[str]:
        """Names of the containers that carry the collection's kind label, in any state."""
        return self.docker("ps", "--all", "--filter", f"label={KIND_LABEL}", "--format", "{{.Names}}").split()

    def image_id(self, image: str) -> str:
        return self.docker("image", "inspect", "--format", "{{.Id}}", image).strip()

    def image_env(self, image: str) -> dict[str, str]:
        return env_dict(json.loads(self.docker("image", "inspect", "--format", "{{json .Config.Env}}", image)) or [])

    def pid1_argv(self, container: str) -> list[str]:
        """argv of the process running as PID 1 in CONTAINER."""
        return self.docker("exec", container, "cat", "/proc/1/cmdline").split("\0")[:-1]


def env_dict(entries: list[str]) -> dict[str, str]:
    pairs = [entry.split("=", 1) for entry in entries]
    env = dict(pairs)
    assert len(env) == len(pairs), f"duplicate variables in {entries}"
    return env


ContainerState = dict[tuple[str, str], tuple[str, str, str]]


def container_state(trays: dict[str, Tray]) -> ContainerState:
    """(tray, container name) -> (id, State.StartedAt, State.Status) for every container on every tray."""
    return {
        (tray.name, name): (info["Id"], info["State"]["StartedAt"], info["State"]["Status"])
        for tray in trays.values()
        for name, info in tray.containers().items()
    }
