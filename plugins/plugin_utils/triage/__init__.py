# Copyright (c) 2026 wideep.gb200 authors
# Apache License 2.0 (see LICENSES/Apache-2.0.txt or https://www.apache.org/licenses/LICENSE-2.0)
"""Triage: known failure signatures (signatures.yml, data) matched against collected evidence (engine.py)."""
