"""The engine versions of the emulated serving image are named once, in emulated/cluster.py.

The image tag, the wheelhouse and the Dockerfile's build arguments follow from DYNAMO_VERSION and
SGLANG_VERSION there; the emulated inventory and the Dockerfile's comment repeat them, and these
tests fail when either is left behind after a version change.
"""

from __future__ import annotations

import importlib.util
import re
import sys
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[2]

_spec = importlib.util.spec_from_file_location("emulated_cluster", ROOT / "emulated" / "cluster.py")
assert _spec is not None and _spec.loader is not None
cluster = importlib.util.module_from_spec(_spec)
sys.modules["emulated_cluster"] = cluster
_spec.loader.exec_module(cluster)


def test_the_emulated_inventory_runs_the_image_cluster_py_builds() -> None:
    group_vars = yaml.safe_load((ROOT / "inventories" / "emulated" / "group_vars" / "all.yml").read_text(encoding="utf-8"))
    assert group_vars["gb200_image"] == cluster.IMAGES.serving
    assert cluster.IMAGES.serving.endswith(f":dynamo-{cluster.DYNAMO_VERSION}")


def test_the_serving_dockerfile_comment_names_the_versions_it_is_built_with() -> None:
    dockerfile = (ROOT / "emulated" / "images" / "serving" / "Dockerfile").read_text(encoding="utf-8")
    comment = " ".join(line.lstrip("# ") for line in dockerfile.splitlines() if line.startswith("#"))
    assert re.search(rf"\bDynamo {re.escape(cluster.DYNAMO_VERSION)}\b", comment), "the Dockerfile's comment names another Dynamo"
    assert re.search(rf"\bSGLang {re.escape(cluster.SGLANG_VERSION)}\b", comment), "the Dockerfile's comment names another SGLang"
    # ... and the build checks the installed versions against the build arguments cluster.py passes.
    assert "ARG DYNAMO_VERSION" in dockerfile and "ARG SGLANG_VERSION" in dockerfile


def test_the_wheelhouse_stamp_changes_with_the_requirements() -> None:
    stamp = cluster.wheelhouse_stamp()
    assert f"ai-dynamo=={cluster.DYNAMO_VERSION}" in stamp.splitlines()
    assert f"sglang=={cluster.SGLANG_VERSION}" in stamp.splitlines()
    original = cluster.SERVING_REQUIREMENTS
    try:
        cluster.SERVING_REQUIREMENTS = (*original, "example-extra-requirement")
        assert cluster.wheelhouse_stamp() != stamp
    finally:
        cluster.SERVING_REQUIREMENTS = original
