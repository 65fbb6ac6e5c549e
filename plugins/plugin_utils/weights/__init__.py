# Copyright (c) 2026 wideep.gb200 authors
# Apache License 2.0 (see LICENSES/Apache-2.0.txt or https://www.apache.org/licenses/LICENSE-2.0)
"""Weights staging: the pass planner of the relay chain (passes.py) and its progress lines (progress.py).
"""
