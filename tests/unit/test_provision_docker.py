"""container_runtime: /etc/docker/daemon.json is merged into, never overwritten."""

from __future__ import annotations

import json
from typing import Any

import pytest

from ansible_collections.wideep.gb200.plugins.plugin_utils.provision.container_runtime import DaemonJsonError, daemon_json, merge

NVIDIA = {"path": "nvidia-container-runtime", "args": []}
# What a tray might already have: log rotation, another runtime, a data root.
EXISTING = {"log-driver": "json-file", "log-opts": {"max-size": "10m"}, "runtimes": {"crun": {"path": "/usr/bin/crun"}}, "data-root": "/raid/docker"}


def run(existing: Any, mode: str = "runtime", **kw: Any) -> dict[str, Any]:
    text = existing if isinstance(existing, str) or existing is None else json.dumps(existing)
    return daemon_json(text, mode, **kw)


@pytest.mark.parametrize(
    ("existing", "mode", "kw", "expected"),
    [
        # nothing there yet
        (None, "runtime", {}, {"runtimes": {"nvidia": NVIDIA}}),
        ("", "runtime", {"default_runtime": True}, {"runtimes": {"nvidia": NVIDIA}, "default-runtime": "nvidia"}),
        # unknown keys and other runtimes are kept, in their order
        (EXISTING, "runtime", {}, {**EXISTING, "runtimes": {"crun": {"path": "/usr/bin/crun"}, "nvidia": NVIDIA}}),
        # runtime -> cdi: our runtime and our default go, the user's runtime stays
        (
            {**EXISTING, "runtimes": {"crun": {"path": "/usr/bin/crun"}, "nvidia": NVIDIA}, "default-runtime": "nvidia"},
            "cdi",
            {},
            {**EXISTING, "features": {"cdi": True}},
        ),
        # cdi with only our runtime registered: no empty "runtimes" is left behind
        ({"runtimes": {"nvidia": NVIDIA}}, "cdi", {}, {"features": {"cdi": True}}),
        # features merge key by key
        ({"features": {"buildkit": True}}, "cdi", {}, {"features": {"buildkit": True, "cdi": True}}),
        # a user's own default runtime is never removed
        ({"default-runtime": "crun"}, "cdi", {}, {"default-runtime": "crun", "features": {"cdi": True}}),
        ({"default-runtime": "crun"}, "runtime", {}, {"default-runtime": "crun", "runtimes": {"nvidia": NVIDIA}}),
        # default_runtime false undoes our earlier default
        ({"default-runtime": "nvidia", "runtimes": {"nvidia": NVIDIA}}, "runtime", {}, {"runtimes": {"nvidia": NVIDIA}}),
        # user options win and can delete (None)
        (
            EXISTING,
            "runtime",
            {"options": {"data-root": None, "log-opts": {"max-file": "3"}}},
            {"log-driver": "json-file", "log-opts": {"max-size": "10m", "max-file": "3"}, "runtimes": {"crun": {"path": "/usr/bin/crun"}, "nvidia": NVIDIA}},
        ),
        (
            {},
            "runtime",
            {"runtime_path": "/usr/bin/nvidia-container-runtime"},
            {"runtimes": {"nvidia": {"path": "/usr/bin/nvidia-container-runtime", "args": []}}},
        ),
    ],
)
def test_merge_table(existing: Any, mode: str, kw: dict[str, Any], expected: dict[str, Any]) -> None:
    result = run(existing, mode, **kw)
    assert result["config"] == expected
    assert list(result["config"]) == list(expected)  # key order: existing keys first
    assert json.loads(result["content"]) == expected
    assert result["content"].endswith("}\n")


def test_idempotent_in_any_formatting() -> None:
    once = run(EXISTING)
    assert once["changed"] is True
    again = daemon_json(once["content"], "runtime")
    assert again["changed"] is False
    # same settings, other formatting (one line): nothing to rewrite
    assert daemon_json(json.dumps(once["config"], separators=(",", ":")), "runtime")["changed"] is False


@pytest.mark.parametrize(
    ("text", "words"),
    [
        ('{"log-driver": "json-file",}', "not valid JSON .line 1"),
        ("[1, 2]", "holds a JSON list, not an object"),
    ],
)
def test_broken_daemon_json_is_refused(text: str, words: str) -> None:
    with pytest.raises(DaemonJsonError, match=words):
        daemon_json(text, "runtime")


def test_unknown_mode() -> None:
    with pytest.raises(ValueError, match="runtime, cdi"):
        daemon_json("{}", "legacy")


def test_merge_does_not_mutate() -> None:
    base = {"a": {"b": 1}}
    merge(base, {"a": {"c": 2}})
    assert base == {"a": {"b": 1}}
