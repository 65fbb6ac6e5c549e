# Copyright (c) 2026 wideep.gb200 authors
# Apache License 2.0 (see LICENSES/Apache-2.0.txt or https://www.apache.org/licenses/LICENSE-2.0)
"""make ee: the plan.json rendered inside the execution environment equals this checkout's plan.

Usage: ee_check.py EE_PLAN_JSON WIDEEP_PLAN_JSON IMAGE (the second: `wideep plan --json`)."""

from __future__ import annotations

import json
import sys
from pathlib import Path


def main(argv: list[str]) -> int:
    ee_file, host_file, image = argv
    ee = json.loads(Path(ee_file).read_text(encoding="utf-8"))
    host = json.loads(Path(host_file).read_text(encoding="utf-8"))["plan"]
    if ee != host:
        differing = sorted(k for k in set(ee) | set(host) if ee.get(k) != host.get(k))
        sys.stderr.write(f"make ee: FAILED: the plan rendered in {image} differs from this checkout's in: {', '.join(differing)}\n")
        return 1
    sys.stdout.write(f"make ee: {image} rendered the plan of {len(ee['hosts'])} trays, identical to this checkout's\n")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
