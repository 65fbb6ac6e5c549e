"""Make this checkout importable as ansible_collections.wideep.gb200 for the unit tests."""

from __future__ import annotations

import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
_LINK_PARENT = ROOT / "build" / "pythonpath" / "ansible_collections" / "wideep"
_LINK = _LINK_PARENT / "gb200"
if not _LINK.exists():
    _LINK_PARENT.mkdir(parents=True, exist_ok=True)
    os.symlink(ROOT, _LINK)
sys.path.insert(0, str(ROOT / "build" / "pythonpath"))
