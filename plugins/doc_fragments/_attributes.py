# Copyright (c) 2026 wideep.gb200 authors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The attributes every module of this collection documents, in one place.

PRIVATE to the collection (hence the leading underscore): other collections should not extend it.
Each module extends DOCUMENTATION (what the attributes mean) and states its own support; a module
that only reads extends INFO_MODULE as well, which says it once: it modifies no state.
"""

from __future__ import annotations


class ModuleDocFragment:
    # What each attribute means. A module adds `support` (and `details` where they help).
    DOCUMENTATION = r"""
options: {}
attributes:
  check_mode:
    description: Runs in check mode and reports what it would change, and C(changed) as the run itself would, without changing the host.
  diff_mode:
    description: Returns the content before and after of what changes (or would change, in check mode) when run with C(--diff).
  idempotent:
    description:
      - Run twice in a row outside check mode with the same arguments, the second run reports no change.
      - This assumes nothing else changed the host in a relevant way in between.
"""

    # For modules that only read: with DOCUMENTATION. They never write, delete, or report changed.
    INFO_MODULE = r"""
options: {}
attributes:
  check_mode:
    support: full
    details:
      - This module does not modify state; it runs the same in check mode.
  diff_mode:
    support: N/A
    details:
      - This module does not modify state.
  idempotent:
    support: full
    details:
      - This module does not modify state.
"""

    # Every module here runs on Linux trays (Debian 12 is where it is tested).
    POSIX = r"""
options: {}
attributes:
  platform:
    description: The systems it runs on.
    support: full
    platforms: posix
"""
