# Copyright (c) 2026 wideep.gb200 authors
# Apache License 2.0 (see LICENSES/Apache-2.0.txt or https://www.apache.org/licenses/LICENSE-2.0)
"""What a serving image holds, as JSON: run inside it (`docker run --rm -i --entrypoint python3 IMAGE -`).

{"libmlx5": "/usr/lib/aarch64-linux-gnu/libmlx5.so" or null, "gdrapi": path or null,
 "versions": {"sglang": ..., "ai-dynamo": ..., "ai-dynamo-runtime": ...}}

Standard library only: the image's own Python, no GPU, no network.
"""

from __future__ import annotations

import glob
import importlib.metadata
import json
import sys

LIBRARY_DIRS = ("/usr/lib/*-linux-gnu", "/usr/lib64", "/usr/lib", "/usr/local/lib", "/usr/local/lib64", "/opt/*/lib")


def find(name: str) -> str | None:
    for pattern in LIBRARY_DIRS:
        for directory in sorted(glob.glob(pattern)):
            hits = sorted(glob.glob(f"{directory}/{name}"))
            if hits:
                return hits[0]
    return None


def version(distribution: str) -> str | None:
    try:
        return importlib.metadata.version(distribution)
    except importlib.metadata.PackageNotFoundError:
        return None


def main() -> int:
    out = {
        "libmlx5": find("libmlx5.so"),
        "gdrapi": find("libgdrapi.so*"),
        "versions": {d: version(d) for d in ("sglang", "ai-dynamo", "ai-dynamo-runtime")},
    }
    sys.stdout.write(json.dumps(out, sort_keys=True) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
