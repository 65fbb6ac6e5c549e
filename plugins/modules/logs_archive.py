#!/usr/bin/python
# Copyright (c) 2026 wideep.gb200 authors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

DOCUMENTATION = r"""
---
module: logs_archive
short_description: Triage what wideep.gb200.logs_info collected and write it, scrubbed, into one archive on the controller
description:
  - Reads each host's logs_info result (and gpu_info result, when there is one) from its host
    variables, matches the known failure signatures (plugins/plugin_utils/triage/signatures.yml)
    and returns the findings and a short table.
  - With O(dest), writes O(dest)/<UTC timestamp>.tar.gz (<host>/<container>.log, <host>/inspect.json,
    <host>/docker-info.json, <host>/images.json, <host>/preflight.json, plan.json, control_plane.json,
    triage.json, triage.txt, MANIFEST.json with what was cut) and O(dest)/triage.json, both C(0600).
  - Every file is scrubbed again before it is written, the values of gb200_secret_env (read from
    the host variables, never passed as an option) and anything shaped like a credential.
  - This is an action plugin; it runs on the controller.
version_added: 0.2.0
author:
  - wideep.gb200 authors (@wideep-gb200)
extends_documentation_fragment:
  - wideep.gb200._attributes
  - wideep.gb200._attributes.posix
attributes:
  check_mode:
    support: full
    details:
      - Triage runs; the archive is not written (its path is returned).
  diff_mode:
    support: none
  idempotent:
    support: none
    details:
      - Each run writes a new archive.
options:
  hosts:
    description: The hosts whose collected evidence to read (ansible_play_hosts_all).
    type: list
    elements: str
    required: true
  collected_var:
    description: The host variable that holds each host's logs_info result.
    type: str
    default: logs_collected
  preflight_var:
    description: The host variable that holds each host's gpu_info result.
    type: str
    default: logs_preflight
  dest:
    description:
      - Directory for the archive and triage.json; empty, triage only. A relative path is relative
        to the directory C(ansible-playbook) was run from.
    type: path
  signatures:
    description: Another signatures file (the bundled one by default).
    type: path
  limits:
    description: The collection limits, recorded in MANIFEST.json.
    type: dict
"""

EXAMPLES = r"""
- name: Triage and archive
  wideep.gb200.logs_archive:
    hosts: "{{ ansible_play_hosts_all }}"
    dest: build/logs
  run_once: true
  delegate_to: localhost
"""

RETURN = r"""
findings:
  description: One per matched (code, host, container), causes first.
  returned: always
  type: list
  elements: dict
  contains:
    code:
      description: The signature's code.
      type: str
    host:
      description: The inventory host.
      type: str
    container:
      description: The container, C(-) for the tray itself, C(control-plane) for etcd/NATS/frontend probes.
      type: str
    evidence:
      description: The matched lines (scrubbed).
      type: list
      elements: str
    fix:
      description: What to do.
      type: str
table:
  description: The findings as short text lines.
  returned: always
  type: list
  elements: str
archive:
  description: The archive written (or that would be in check mode).
  returned: when dest is given
  type: str
not_collected:
  description: Hosts whose evidence is missing, with why.
  returned: always
  type: list
  elements: str
"""
