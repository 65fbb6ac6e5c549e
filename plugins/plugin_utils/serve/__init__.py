# Copyright (c) 2026 wideep.gb200 authors
# Apache License 2.0 (see LICENSES/Apache-2.0.txt or https://www.apache.org/licenses/LICENSE-2.0)
"""Serving: the frontend's /health (health.py), drift of the containers from the plan (status.py),
and each worker's health as a unit of all its ranks (unit.py).
"""
