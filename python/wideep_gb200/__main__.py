# Copyright (c) 2026 wideep.gb200 authors
# Apache License 2.0 (see LICENSES/Apache-2.0.txt or https://www.apache.org/licenses/LICENSE-2.0)
"""python -m wideep_gb200 == wideep."""

from __future__ import annotations

import sys

from .cli import main

sys.exit(main())
