# Copyright (c) 2026 wideep.gb200 authors
# Apache License 2.0 (see LICENSES/Apache-2.0.txt or https://www.apache.org/licenses/LICENSE-2.0)
"""Benchmarking a deployment the way the field judges it (role bench, action wideep.gb200.bench).

sweep.py (the sweep as data, presets, aiperf's command line) -> aiperf runs ->
records.py (aiperf's own per-request records) -> metrics.py (InferenceX's metrics per point) ->
gate.py (the validity check, shared with the smoke gate) -> results.py (results.json/.csv) ->
plots.py (PNG, matplotlib). Everything but plots.py is pure and imports only the standard library.
"""
