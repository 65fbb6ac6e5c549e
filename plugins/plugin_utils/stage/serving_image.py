# Copyright (c) 2026 wideep.gb200 authors
# Apache License 2.0 (see LICENSES/Apache-2.0.txt or https://www.apache.org/licenses/LICENSE-2.0)
"""The serving image on every tray: where it comes from, which trays need it, what it must hold."""

from __future__ import annotations

import json
import tarfile
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

SOURCE_KEYS: dict[str, set[str]] = {
    "host": {"type", "host"},
    "pull": {"type", "host"},
    "archive": {"type", "host", "path"},
    "build": {"type", "host", "path", "dockerfile", "args", "platform"},
}


def source_problems(source: Any, image: str, trays: Sequence[str]) -> list[str]:
    """Every problem of serving_image_source at once ({} means: already on every tray)."""
    if source in (None, {}):
        return []
    if not isinstance(source, Mapping):
        return [f"serving_image_source must be a mapping (or {{}}), got a {type(source).__name__}"]
    kind = source.get("type")
    if kind not in SOURCE_KEYS:
        return [f"serving_image_source.type {kind!r} is not one of: {', '.join(SOURCE_KEYS)}"]
    allowed = ", ".join(sorted(SOURCE_KEYS[kind]))
    problems = [f"serving_image_source: unknown key {k!r} for type {kind} (keys: {allowed})" for k in source if k not in SOURCE_KEYS[kind]]
    host = source.get("host")
    controller = kind == "archive" and host == "localhost"
    if not isinstance(host, str) or not (host in trays or controller):
        where = "a tray of the play" + (" or localhost (the controller)" if kind == "archive" else "")
        problems.append(f"serving_image_source.host {host!r} is not {where}: name the one that obtains the image")
    if kind in ("archive", "build") and not (isinstance(source.get("path"), str) and str(source.get("path")).startswith("/")):
        problems.append(f"serving_image_source.path must be an absolute path on {host} for type {kind}")
    if kind == "archive" and not controller and not str(source.get("path", "")).endswith(".tar"):
        problems.append("serving_image_source.path: an archive on a tray is a `docker save` file ending in .tar")
    if kind == "build" and "args" in source and not isinstance(source["args"], Mapping):
        problems.append("serving_image_source.args is a mapping of build argument -> value")
    if kind == "pull" and "@sha256:" not in image:
        problems.append(f"the image {image!r} is pulled by tag: pin its digest (gb200_image: name@sha256:<digest>) so that every run gets the same image")
    return problems


def image_ids(results: Mapping[str, Any]) -> dict[str, str | None]:
    """host -> image ID (None: absent) from each tray's image read (wideep.gb200.host_info's `images`,
    the same as community.docker.docker_image_info's)."""
    out: dict[str, str | None] = {}
    for host, result in results.items():
        images = (result or {}).get("images") or []
        out[host] = str(images[0]["Id"]) if images else None
    return out


def distribution(ids: Mapping[str, str | None], source_host: str | None, image: str) -> dict[str, Any]:
    """Who needs the image, or the problems when no tray can give it.

    With a source host: the trays whose ID differs from the source's receive it. Without one
    (serving_image_source {}), every tray must already hold the same ID."""
    problems: list[str] = []
    if source_host is None:
        absent = sorted(h for h, i in ids.items() if i is None)
        if absent:
            problems.append(
                f"{image} is not on {', '.join(absent)}; set serving_image_source (host, pull, archive or build) so that one tray "
                "obtains it and the others get it through the chain"
            )
        distinct = sorted({i for i in ids.values() if i})
        if len(distinct) > 1:
            by_id = {i: sorted(h for h, x in ids.items() if x == i) for i in distinct}
            problems.append(
                f"the trays hold different images under the name {image}: "
                + "; ".join(f"{i[7:19]} on {', '.join(hosts)}" for i, hosts in by_id.items())
                + "; set serving_image_source to make one of them the image of every tray"
            )
        return {"source_id": distinct[0] if len(distinct) == 1 else None, "receivers": [], "problems": problems}
    source_id = ids.get(source_host) if source_host != "localhost" else None
    receivers = [h for h, i in ids.items() if h != source_host and (source_id is None or i != source_id)]
    return {"source_id": source_id, "receivers": receivers, "problems": problems}


def archive_info(directory: str) -> tuple[str, str]:
    """(image ID, file name) of the one `docker save` archive in a directory (on the controller).

    The archive's manifest.json names the image's config blob, whose digest is the image ID
    (docker's legacy layout: "<hex>.json"; OCI layout: "blobs/sha256/<hex>")."""
    tars = sorted(Path(directory).glob("*.tar"))
    if len(tars) != 1:
        raise ValueError(f"{directory} must hold exactly one docker save archive (*.tar), holds {len(tars)}")
    with tarfile.open(tars[0]) as archive:
        member = archive.extractfile("manifest.json")
        if member is None:
            raise ValueError(f"{tars[0]} has no manifest.json: not a docker save archive")
        config = str(json.load(member)[0]["Config"])
    digest = config.removeprefix("blobs/sha256/").removesuffix(".json")
    return f"sha256:{digest}", tars[0].name


def loaded_problems(results: Mapping[str, Any], source_id: str | None, image: str) -> list[str]:
    """After `docker load` on the receivers: every tray must now hold the source's image ID."""
    ids = image_ids(results)
    wanted = source_id or next((i for i in ids.values() if i), None)
    return [
        f"host {h}: holds {('image ' + i[7:19]) if i else 'no image'} under {image} after the transfer, not {str(wanted)[7:19]}: "
        "the archive was verified by sha256, so the tray's Docker loaded something else (check its disk and daemon)"
        for h, i in sorted(ids.items())
        if i != wanted
    ]


def content_problems(probe_stdout: str, image: str, requirements: Mapping[str, Any], engine: Mapping[str, str]) -> list[str]:
    """What the image must hold (image_probe.py's JSON) against what the recipe and the roles need."""
    try:
        found = json.loads(probe_stdout.strip().splitlines()[-1])
    except (ValueError, IndexError):
        return [f"the probe printed nothing readable in {image} (does it have python3?)"]
    problems: list[str] = []
    if requirements.get("libmlx5") and not found.get("libmlx5"):
        problems.append(
            f"{image} has no unversioned libmlx5.so: NVSHMEM's IBGDA (DeepEP across trays) opens it by that name. "
            "Fix: build the image with the link (SGLang's Dockerfile.gb200: ln -sf libmlx5.so.1 libmlx5.so), or set "
            "serving_image_require_libmlx5: false where no EP group crosses an InfiniBand link"
        )
    if requirements.get("gdrcopy") and not found.get("gdrapi"):
        problems.append(f"{image} has no gdrcopy library (libgdrapi.so): build it with gdrcopy, or set serving_image_require_gdrcopy: false")
    if requirements.get("engine"):
        have = {"sglang": found.get("versions", {}).get("sglang"), "dynamo": found.get("versions", {}).get("ai-dynamo")}
        want = {"sglang": engine.get("sglang"), "dynamo": engine.get("dynamo")}
        if have != want:
            problems.append(
                f"{image} holds SGLang {have['sglang'] or 'none'} / Dynamo {have['dynamo'] or 'none'}; the recipe pins "
                f"SGLang {want['sglang']} / Dynamo {want['dynamo']}: use an image with them (gb200_image) or a recipe for this one"
            )
    return problems
