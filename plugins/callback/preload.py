# Copyright (c) 2026 wideep.gb200 authors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

DOCUMENTATION = r"""
name: preload
type: aggregate
short_description: Load the plugins every task needs once, before Ansible forks its workers
description:
  - Ansible runs every task on every host in a freshly forked worker process, which loads (and, for a collection's
    plugins, compiles from source) the action, filter, test and connection plugins that task needs, and then throws
    them away. On a rack of 18 trays a no-op C(site) run has about 2,000 task results, so that load is paid about
    2,000 times.
  - This callback loads them once in the controller's main process when the playbook starts (this collection's
    action, filter, test and lookup plugins, ansible-core's action, filter and test plugins, and the ssh, local, sh
    and sudo plugins); every forked worker inherits them. It changes nothing else, and a plugin that fails to load
    here is skipped (the worker then loads it as it always did, and reports any error there).
  - Measured on the emulated 18-tray rack in C(make bench-rack) (see docs/rack.md).
  - Enabled in the repository's ansible.cfg (C(callbacks_enabled)); add it to yours, or to
    E(ANSIBLE_CALLBACKS_ENABLED), to have it elsewhere.
version_added: 0.1.0
author:
  - wideep.gb200 authors (@wideep-gb200)
requirements:
  - enable in configuration (C(callbacks_enabled = wideep.gb200.preload))
"""

import importlib
import pkgutil
import time
from typing import Any

from ansible.plugins.callback import CallbackBase
from ansible.plugins.loader import action_loader, become_loader, connection_loader, filter_loader, shell_loader, test_loader

COLLECTION = "ansible_collections.wideep.gb200.plugins"


class CallbackModule(CallbackBase):
    CALLBACK_VERSION = 2.0
    CALLBACK_TYPE = "aggregate"
    CALLBACK_NAME = "wideep.gb200.preload"
    CALLBACK_NEEDS_ENABLED = True

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.loaded = 0
        self.skipped: list[str] = []

    def _load(self, what: str, load: Any) -> None:
        try:
            load()
            self.loaded += 1
        except Exception as exc:  # pylint: disable=broad-exception-caught # a worker loads it later, as always
            self.skipped.append(f"{what}: {exc}")

    def v2_playbook_on_start(self, playbook: Any) -> None:  # noqa: ARG002 # the callback API passes it
        started = time.monotonic()
        # ansible-core's own: every action plugin (set_fact, assert, include_*, the module runner, ...),
        # every filter and test file, the connection, shell and become plugins a tray uses.
        self._load("ansible.builtin actions", lambda: list(action_loader.all(class_only=True)))
        self._load("ansible.builtin filters", lambda: list(filter_loader.all()))
        self._load("ansible.builtin tests", lambda: list(test_loader.all()))
        for name, loader in (("ssh", connection_loader), ("local", connection_loader), ("sh", shell_loader), ("sudo", become_loader)):
            self._load(name, lambda loader=loader, name=name: loader.get(name, class_only=True))
        # this collection's plugins, compiled once here instead of once per task and host (the
        # plugin loaders import them under these names, and find them in sys.modules)
        for kind in ("action", "filter", "test", "lookup", "plugin_utils"):
            try:
                package = importlib.import_module(f"{COLLECTION}.{kind}")
            except ImportError:
                continue
            for found in pkgutil.walk_packages(package.__path__, f"{COLLECTION}.{kind}."):
                self._load(found.name, lambda name=found.name: importlib.import_module(name))
        self._display.vvv(f"wideep.gb200.preload: {self.loaded} plugin loads in {time.monotonic() - started:.2f} s before the first fork")
        for line in self.skipped:
            self._display.vvv(f"wideep.gb200.preload: skipped {line}")
