#!/usr/bin/python
# Copyright (c) 2026 wideep.gb200 authors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

DOCUMENTATION = r"""
---
module: model_weights_relay
short_description: One member of a pipelined chain broadcast of model weights
description:
  - Index 0 is the source, which reads O(source_dir) and streams the files the plan lists into the chain;
    every other index listens on its port, forwards each chunk downstream as it arrives, writes the files it
    needs under C(DEST/.wideep/partial), hashes while streaming, and publishes each file (fsync, atomic
    rename) only when its sha256 matches the manifest.
  - A downstream that dies or stalls longer than O(stall_timeout) is bypassed; it keeps what it verified and
    is caught up by the next pass. Progress (bytes, rate, ETA) is written to O(progress_path) every second.
  - With O(job_path) it runs detached (a daemon named C(wideep-relay)) and the task returns at once; its action
    plugin then starts it with one run of the host's Python (the relay's module_utils sent as source), no module
    run. M(wideep.gb200.relay_wait) collects its result.
version_added: 0.1.0
author:
  - wideep.gb200 authors (@wideep-gb200)
extends_documentation_fragment:
  - wideep.gb200._attributes
  - wideep.gb200._attributes.posix
attributes:
  check_mode:
    support: none
    details:
      - It moves data between trays; the model_weights role does not start it in check mode.
  diff_mode:
    support: none
  idempotent:
    support: none
    details:
      - Each run streams what the pass plan gives it; the role starts a relay only on trays that lack files.
options:
  run_id:
    description: Identifies one pass; connections from another pass are refused.
    type: str
    required: true
  index:
    description: This member's position in O(chain); 0 is the source.
    type: int
    required: true
  chain:
    description: C(address:port) of every member in chain order (the source's port is unused).
    type: list
    elements: str
    required: true
  manifest:
    description: Every file of the model (C(path), C(size), C(sha256)), in stream order.
    type: list
    elements: dict
    required: true
  starts:
    description: Path -> offset the stream starts the file at; files not listed are not streamed.
    type: dict
    required: true
  needs:
    description: Paths this member writes (the others it only forwards).
    type: list
    elements: str
    default: []
  dest:
    description: The model directory this member writes into.
    type: path
  source_dir:
    description: For index 0, the directory the files are read from.
    type: path
  fanout:
    description: The naive baseline for benchmarks; the source sends the whole stream to every member itself.
    type: bool
    default: false
  stall_timeout:
    description: Seconds a send may block before the downstream is bypassed.
    type: float
    default: 30
  connect_timeout:
    description: Seconds to wait for the first downstream to listen.
    type: float
    default: 120
  idle_timeout:
    description: Seconds a receiver waits without any byte before it gives up (its files stay partial).
    type: float
    default: 300
  rate_limit:
    description: Bytes per second the source may send (0 means line rate).
    type: int
    default: 0
  progress_path:
    description: JSON file rewritten every second with position, rate and ETA.
    type: path
  lanes:
    description:
      - TCP connections per hop; the stream's blocks go round-robin over them and the receiver puts them back in
        order, so that several cores (and NICs) carry one hop. Every member of a chain must use the same value.
      - The default comes from C(make bench-relay) (see the README); more lanes help where cores or NICs are free.
    type: int
    default: 2
  block_bytes:
    description:
      - Bytes per block on the wire (a multiple of 4096). Every member of a chain must use the same value.
      - Each hop adds one block's time at the link rate before the next tray starts (25 MB/s links, 1 MiB 0.04 s);
        C(make bench-relay) found no gain from 4 MiB on loopback.
    type: int
    default: 1048576
  socket_buffer:
    description: SO_SNDBUF/SO_RCVBUF in bytes for every connection; 0 leaves them to the kernel's autotuning.
    type: int
    default: 0
  congestion:
    description:
      - TCP congestion control of the connections this member sends on (to its downstream, or every receiver
        with O(fanout)); an empty string keeps the kernel's default (C(net.ipv4.tcp_congestion_control)).
      - Where the tray's kernel lacks it, or refuses it, the connection keeps the kernel's default; the result's
        RV(congestion) says which one ran.
      - V(cubic) by default, from C(make bench-weights) (see the README), where a chain of 8 trays on links of one
        rate took 1.09-1.11 x W/B with CUBIC and 1.14-1.15 with BBR (under load 1.15 and 1.24).
    type: str
    default: cubic
  page_cache:
    description:
      - V(direct) writes what a receiver gets with O_DIRECT, around the page cache (no copy into it, nothing to
        write back or drop; bytes off the 4 KiB grid go through a staging buffer, the tail is padded then cut
        back); where the filesystem refuses O_DIRECT (tmpfs, some overlays) that file is written as with V(drop).
      - V(drop) writes through the page cache, flushes what was written in steps of 32 MiB and drops it
        (sync_file_range and POSIX_FADV_DONTNEED), so that writing the model does not evict everything else.
      - V(keep) leaves the written files in the page cache (faster to load right away where memory is plenty).
      - Either way nothing is read back (the hash comes from the received buffers) and a file is fsynced before
        it is published. make bench-relay measures V(direct) against V(drop).
    type: str
    choices: [direct, drop, keep]
    default: direct
  job_path:
    description:
      - Run the relay detached from this task (a daemon of its own session, named C(wideep-relay) in C(ps)) and
        return at once; its result is written to this JSON file when it ends (C(started) while it runs, then
        C(finished) with the result), which M(wideep.gb200.relay_wait) O(wideep.gb200.relay_wait#module:job_path)
        waits on.
      - This is what the broadcast role uses instead of Ansible's C(async), whose start costs several round trips
        per tray (a temporary directory, the module copied, the wrapper) where this is one pipelined call.
      - Unset, the module runs the relay in the foreground and returns its result.
    type: path
  mark_complete:
    description:
      - On a receiver whose stream ended with every file it needed verified and published, check O(dest) against
        the manifest as M(wideep.gb200.model_weights_mark) does (published files are trusted by their stamps, so
        nothing is read again) and write C(.wideep/COMPLETE) when the whole copy is there and the safetensors
        index agrees. RV(holds_all) then tells the caller that this tray needs no further pass.
      - Nothing is removed here; a tray that does not hold everything is left to the next pass's check.
    type: bool
    default: false
"""

EXAMPLES = r"""
- name: Receive and forward (on every tray of the chain)
  wideep.gb200.model_weights_relay:
    run_id: "{{ plan.run_id }}"
    index: "{{ plan.members[inventory_hostname].index }}"
    chain: "{{ plan.chain }}"
    manifest: "{{ manifest }}"
    starts: "{{ plan.starts }}"
    needs: "{{ plan.members[inventory_hostname].needs }}"
    dest: /models/deepseek-ai/DeepSeek-R1
  async: 7200
  poll: 0
"""

RETURN = r"""
state:
  description: V(complete) when the whole stream passed through, else V(incomplete).
  returned: always
  type: str
published:
  description: Files this member verified and published.
  returned: always
  type: list
  elements: str
failed:
  description: Files that did not verify, with the reason.
  returned: always
  type: dict
bypassed:
  description: Downstream members this one bypassed.
  returned: always
  type: list
  elements: str
bytes_received:
  description: Stream bytes received.
  returned: always
  type: int
bytes_sent:
  description: Bytes sent downstream (replays after a bypass included).
  returned: always
  type: int
seconds:
  description: Wall time.
  returned: always
  type: float
lanes:
  description: TCP connections per hop this member used.
  returned: always
  type: int
congestion:
  description: The TCP congestion control of the connections this member sent on, as the kernel reports it; null when it sent nothing.
  returned: always
  type: str
started_at:
  description: Wall clock (seconds since the epoch) when this member started.
  returned: always
  type: float
first_byte_at:
  description: Wall clock of the first stream byte received (the source, sent); null before it.
  returned: always
  type: float
last_byte_at:
  description: Wall clock when the whole stream had arrived here (the source, when its downstream acknowledged it); null before it.
  returned: always
  type: float
finished_at:
  description: Wall clock when this member ended (every file it received written, verified and published).
  returned: always
  type: float
pid:
  description: With O(job_path), the process ID of the detached relay.
  returned: when O(job_path) is set
  type: int
holds_all:
  description:
    - With O(mark_complete), whether this tray now holds every file of the manifest, verified, and
      C(.wideep/COMPLETE) says so.
  returned: always
  type: bool
marked:
  description: With O(mark_complete), whether C(.wideep/COMPLETE) was written by this run.
  returned: always
  type: bool
"""

from typing import Any

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.wideep.gb200.plugins.module_utils._relay import RelayError
from ansible_collections.wideep.gb200.plugins.module_utils._relay_job import RELAY_ARGUMENT_SPEC, RELAY_REQUIRED_IF, detach, name_process, relay_work


def main() -> None:
    module = AnsibleModule(argument_spec=RELAY_ARGUMENT_SPEC, required_if=RELAY_REQUIRED_IF)
    params: dict[str, Any] = module.params
    try:
        work = relay_work(params)
    except RelayError as exc:
        module.fail_json(msg=str(exc))
    if params["job_path"]:
        try:
            pid = detach(params["job_path"], work)
        except OSError as exc:
            module.fail_json(msg=f"starting the relay failed: {exc}")
        module.exit_json(changed=False, pid=pid, job_path=params["job_path"])
    name_process()
    outcome = work()
    if outcome.get("failed") is True:  # the relay itself failed (else "failed" lists files that did not verify)
        del outcome["failed"]
        module.fail_json(**outcome)
    module.exit_json(**outcome)


if __name__ == "__main__":
    main()
