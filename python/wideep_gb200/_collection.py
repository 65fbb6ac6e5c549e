# Copyright (c) 2026 wideep.gb200 authors
# Apache License 2.0 (see LICENSES/Apache-2.0.txt or https://www.apache.org/licenses/LICENSE-2.0)
"""Where the collection this package drives lives, and which playbooks it has."""

from __future__ import annotations

from functools import cache
from pathlib import Path

from .errors import WideepError

_RELATIVE = Path("ansible_collections") / "wideep" / "gb200"


@cache
def collections_path() -> Path:
    """The directory that holds ansible_collections/wideep/gb200 for this package.

    Installed (`pip install .`): the wheel puts the collection beside the package, in
    site-packages. From a checkout (python/ on sys.path, the tests): the committed link
    collections/ansible_collections/wideep/gb200 -> the checkout. Either way the playbooks are
    those of the package's own version, never another copy found on ANSIBLE_COLLECTIONS_PATH.
    """
    here = Path(__file__).resolve().parent
    for candidate in (here.parent, here.parents[1] / "collections"):
        if (candidate / _RELATIVE / "galaxy.yml").is_file():
            return candidate
    raise WideepError(f"the wideep.gb200 collection is not installed beside {here} (reinstall the package: pip install wideep-gb200)")


def collection_dir() -> Path:
    return collections_path() / _RELATIVE


def playbooks() -> tuple[str, ...]:
    """The collection's playbooks (playbooks/*.yml), e.g. ('provision', 'render', 'serve', ...).

    Read from the collection, so playbooks added by later work (logs, bench) appear here, in the
    Python API and as `wideep` commands without any change to this package."""
    return tuple(sorted(p.stem for p in (collection_dir() / "playbooks").glob("*.yml")))
