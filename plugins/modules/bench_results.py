#!/usr/bin/python
# Copyright (c) 2026 wideep.gb200 authors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

DOCUMENTATION = r"""
---
module: bench_results
short_description: Compute a benchmark's results from aiperf's per-request records and judge each point
description:
  - Reads O(dest)/points/<point name>/profile_export.jsonl (aiperf's own records, C(--export-level records)) of every
    point in O(points) and computes, per point, what the field reports (InferenceX's definitions) request and token
    throughput, tokens/s per GPU (total over all GPUs, output per decode GPU, input per prefill GPU), interactivity
    (1000 / TPOT in ms), TTFT, TPOT, ITL and latency p50/p90/p99, and errors.
  - Writes O(dest)/results.json and O(dest)/results.csv, each naming the deployment (plan hash, recipe, engine and its
    versions, image, topology). On Dynamo's mocker both say that the figures measure the plumbing, not GB200.
  - Judges each point with the validity gate (the smoke gate's check too) a point with zero output tokens, a token
    count more than O(token_tolerance) from what was asked, or an error rate above O(max_error_rate) is refused, and
    RV(problems) names it and the reason. The task does not fail for that; the role does, after writing the results.
  - This is an action plugin; it runs on the controller and contacts no host.
version_added: 0.3.0
author:
  - wideep.gb200 authors (@wideep-gb200)
extends_documentation_fragment:
  - wideep.gb200._attributes
  - wideep.gb200._attributes.posix
attributes:
  check_mode:
    support: full
    details:
      - Computes and returns everything, writes nothing.
  diff_mode:
    support: none
  idempotent:
    support: none
    details:
      - Rewrites both files from the records every time.
options:
  dest:
    description: The benchmark's directory. A relative path is relative to the directory C(ansible-playbook) was run from.
    type: path
    required: true
  points:
    description: The points run so far, as C(bench_sweep | wideep.gb200._bench_points) gives them.
    type: list
    elements: dict
    required: true
  plan:
    description: The plan, C(gb200_plan) as wideep.gb200.plan sets it.
    type: dict
    required: true
  aiperf_version:
    description: The aiperf version that produced the records, written into results.json.
    type: str
  complete:
    description: Whether O(points) is the whole sweep; results.json's C(valid) is true only for a complete, valid sweep.
    type: bool
    default: false
  max_error_rate:
    description: The highest share of failed requests a valid point may have (0 = none).
    type: float
    default: 0.0
  token_tolerance:
    description: How far (a fraction) the mean output tokens per request may be from what was asked.
    type: float
    default: 0.1
"""

EXAMPLES = r"""
- name: Results of the points run so far
  wideep.gb200.bench_results:
    dest: build/bench/serving
    points: "{{ bench_points[:3] }}"
    plan: "{{ gb200_plan }}"
    aiperf_version: 0.13.0
    complete: true
"""

RETURN = r"""
files:
  description: The files written (none in check mode).
  returned: always
  type: list
  elements: str
  sample: [/home/me/wideep/build/bench/serving/results.json, /home/me/wideep/build/bench/serving/results.csv]
valid:
  description: Whether every point passed the gate and the sweep is complete.
  returned: always
  type: bool
problems:
  description: One line per refused point, the point's name, a colon and the reasons.
  returned: always
  type: list
  elements: str
  sample: ["isl1024-osl1024-c64: 0 output tokens from 256 completed requests"]
lines:
  description: One printable summary line per point.
  returned: always
  type: list
  elements: str
note:
  description: The mocker's caveat when the engine is the mocker, else null.
  returned: always
  type: str
deployment:
  description: What identifies the deployment measured (plan_hash, recipe, engine, sglang, dynamo, image, topology, gpus).
  returned: always
  type: dict
points:
  description: Every point's row of results.json.
  returned: always
  type: list
  elements: dict
"""
