"""The containers role asks community.docker.docker_container only about containers that are not
settled (plugins/plugin_utils/serve/status.py unsettled, the filter wideep.gb200._unsettled), from
one wideep.gb200.host_info read of the specs' containers and images."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from ansible_collections.wideep.gb200.plugins.filter.serve import gb200_unsettled

SPECS: list[dict[str, Any]] = [
    {"name": "etcd", "image": "quay.io/coreos/etcd:v3.5.21", "labels": {"wideep.gb200.spec": "aaa", "wideep.gb200.kind": "etcd"}},
    {"name": "worker", "image": "serving", "labels": {"wideep.gb200.spec": "bbb", "wideep.gb200.kind": "worker"}, "secret_env": ["HF_TOKEN"]},
    {"name": "agent", "image": "sha256:c0ffee", "labels": {"wideep.gb200.spec": "ccc"}},
]
IMAGES = [
    {"Id": "sha256:e7cd", "RepoTags": ["quay.io/coreos/etcd:v3.5.21"], "Config": {"Labels": None}},
    {"Id": "sha256:5e41", "RepoTags": ["serving:latest"], "Config": {"Labels": {"org.opencontainers.image.version": "1.6.1"}}},
    {"Id": "sha256:c0ffee", "RepoTags": [], "Config": {}},
]


def converged() -> dict[str, Any]:
    """host_info's answer on a tray where every container runs its spec."""
    return {
        "changed": False,
        "images": copy.deepcopy(IMAGES),
        "containers": {
            "etcd": {"State": {"Status": "running"}, "Image": "sha256:e7cd", "Labels": dict(SPECS[0]["labels"])},
            "worker": {"State": {"Status": "running"}, "Image": "sha256:5e41", "Labels": {"org.opencontainers.image.version": "1.6.1", **SPECS[1]["labels"]}},
            "agent": {"State": {"Status": "running"}, "Image": "sha256:c0ffee", "Labels": dict(SPECS[2]["labels"])},
        },
    }


def test_settled_containers_are_left_alone() -> None:
    assert gb200_unsettled(SPECS, converged(), False) == []


def _exited(seen: dict[str, Any]) -> None:
    seen["containers"]["etcd"]["State"] = {"Status": "exited", "ExitCode": 1}


def _gone(seen: dict[str, Any]) -> None:
    seen["containers"]["etcd"] = None


def _other_spec(seen: dict[str, Any]) -> None:
    seen["containers"]["etcd"]["Labels"]["wideep.gb200.spec"] = "old"


def _extra_label(seen: dict[str, Any]) -> None:
    seen["containers"]["etcd"]["Labels"]["left.over"] = "1"


def _image_moved(seen: dict[str, Any]) -> None:  # the tag names a new image (stage brought another build)
    seen["images"][0]["Id"] = "sha256:new"


def _image_absent(seen: dict[str, Any]) -> None:
    del seen["images"][0]


@pytest.mark.parametrize("change", [_exited, _gone, _other_spec, _extra_label, _image_moved, _image_absent])
def test_what_is_not_settled_goes_to_docker_container(change: Any) -> None:
    seen = converged()
    change(seen)
    assert [s["name"] for s in gb200_unsettled(SPECS, seen, False)] == ["etcd"]


@pytest.mark.parametrize("seen", [None, {"skipped": True, "changed": False}, {"failed": True, "msg": "no docker"}], ids=["no-read", "skipped", "failed"])
def test_without_a_read_every_container_goes_to_docker_container(seen: Any) -> None:
    """containers_full_compare: true (the read is skipped), or a read that failed."""
    assert gb200_unsettled(SPECS, seen, False) == SPECS


def test_new_secret_values_send_the_containers_with_secrets() -> None:
    """The spec hash holds secret names, not values: the env files changed, so their environment did."""
    assert [s["name"] for s in gb200_unsettled(SPECS, converged(), True)] == ["worker"]
    seen = converged()
    _exited(seen)
    assert [s["name"] for s in gb200_unsettled(SPECS, seen, True)] == ["etcd", "worker"]  # the specs' order
