# Copyright (c) 2026 wideep.gb200 authors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

DOCUMENTATION = r"""
name: linear
short_description: Ansible's linear strategy, with a task whose C(when) is false skipped without forking a worker
description:
  - Runs a play exactly as ansible-core's C(linear) strategy does (this plugin is a subclass that changes one step),
    except for one thing. Ansible forks a worker process for every task on every host, also to find out that the
    task's C(when) is false and report it skipped. On a rack of 18 trays about half of a no-op C(site) run's task
    results are such skips, and each fork costs the controller as much CPU as a task that runs.
  - This strategy evaluates the C(when) of a task in the controller's main process first, with the same variables,
    the same connection variables and the same code that the worker would use, and when it is false it sends the
    very result the worker would have sent (C(skipped), C(skip_reason), C(false_condition), C(_ansible_no_log))
    through the same result queue, so callbacks, C(register), handlers, C(any_errors_fatal) and the play's
    statistics see no difference. Every other task, and every task whose C(when) is true, goes to a worker as always.
  - A task is left to a worker, unchanged, when it has a loop (its C(when) is evaluated per item), a C(delegate_to),
    a conditional that calls a lookup (C(lookup), C(query), C(q); a lookup may have effects, and would run twice), or
    when evaluating the conditional here raises anything or emits a warning or deprecation (the worker reports
    those as it always does).
  - Uses ansible-core's task-executor internals of the ansible-core versions this collection supports (2.19); with
    another ansible-core where they are missing it runs as the plain C(linear) strategy.
  - Measured on the emulated 18-tray rack in C(make bench-rack) (see docs/rack.md). The repository's ansible.cfg
    selects it (C(strategy = wideep.gb200.linear)); C(ANSIBLE_STRATEGY=linear) runs without it.
version_added: 0.1.0
author:
  - wideep.gb200 authors (@wideep-gb200)
"""

import re
from typing import Any

from ansible.plugins.strategy.linear import StrategyModule as LinearStrategyModule
from ansible.utils.display import Display

try:  # the executor internals this strategy replays; absent in another ansible-core, then it is plain linear
    from ansible._internal import _display_utils
    from ansible._internal._templating._engine import TemplateEngine
    from ansible.executor.task_result import _RawTaskResult
    from ansible.playbook.task import Task

    HAS_INTERNALS = all(
        hasattr(cls, name)
        for cls, name in (
            (Task, "_resolve_conditional"),
            (Task, "update_result_no_log"),
            (_display_utils, "DeferredWarningContext"),
        )
    )
except ImportError:  # pragma: no cover - another ansible-core
    HAS_INTERNALS = False

display = Display()

# A conditional that calls a lookup is left to the worker: the lookup might have effects, and it would run twice.
LOOKUP_CALL = re.compile(r"\b(?:lookup|query|q)\s*\(")


class StrategyModule(LinearStrategyModule):
    """Ansible's linear strategy; a task whose ``when`` is false on a host is skipped on the controller."""

    def __init__(self, tqm: Any) -> None:
        super().__init__(tqm)
        self.skipped_here = 0

    def run(self, iterator: Any, play_context: Any) -> Any:
        try:
            return super().run(iterator, play_context)
        finally:
            display.vv(f"wideep.gb200.linear: {self.skipped_here} task results of the play skipped on the controller, without a worker")

    def _queue_task(self, host: Any, task: Any, task_vars: dict[str, Any], play_context: Any) -> None:
        result = self._skip_result(host, task, task_vars, play_context) if HAS_INTERNALS else None
        if result is None:
            super()._queue_task(host, task, task_vars, play_context)
            return
        # What StrategyBase._queue_task and the worker do for this task and host, less the fork: the result
        # goes through the same queue, so the results thread and _process_pending_results handle it as any other.
        self._queued_task_cache[(host.name, task._uuid)] = {
            "host": host,
            "task": task,
            "task_vars": task_vars,
            "play_context": play_context,
        }
        self._tqm.send_callback("v2_runner_on_start", host, task)
        self._final_q.send_task_result(_RawTaskResult(host=host, task=task, return_data=result, task_fields=task.dump_attrs()))
        self._pending_results += 1
        self.skipped_here += 1

    @staticmethod
    def _eligible(task: Any) -> bool:
        when = task.when
        if not when or task.loop is not None or task.loop_with or task.delegate_to is not None:
            return False
        return not any(isinstance(item, str) and LOOKUP_CALL.search(item) for item in when)

    def _skip_result(self, host: Any, task: Any, task_vars: dict[str, Any], play_context: Any) -> dict[str, Any] | None:
        """The worker's result for a task whose conditional is false on this host; None when it is not (or not surely)."""
        if not self._eligible(task):
            return None
        try:
            # The variables the worker evaluates `when` with (TaskExecutor.run, then _execute_internal): the task's
            # search path, then the play context's connection variables on a copy.
            variables = dict(task_vars)
            search_path = task.get_search_path()
            if self._loader.get_basedir() not in search_path:
                search_path.append(self._loader.get_basedir())
            variables["ansible_search_path"] = search_path
            templar = TemplateEngine(loader=self._loader, variables=variables)
            with _display_utils.DeferredWarningContext(variables=variables) as warnings:
                tempvars = variables.copy()
                context = play_context.set_task_and_variable_override(task=task, variables=variables, templar=templar)
                context.post_validate(templar=templar)
                if not context.remote_addr:
                    context.remote_addr = host.address
                context.update_vars(tempvars)
                false_condition: dict[str, Any] = {}
                if task._resolve_conditional(task.when, tempvars, result_context=false_condition):
                    return None
                result = {"changed": False, "skipped": True, "skip_reason": "Conditional result was False"} | false_condition
                task.update_result_no_log(templar, result)
            if warnings.get_warnings() or warnings.get_deprecation_warnings():
                return None
        except Exception as exc:  # pylint: disable=broad-exception-caught # the worker evaluates it again and reports it
            display.debug(f"wideep.gb200.linear: {host.name}/{task.get_name()}: left to a worker ({exc!r})")
            return None
        return result
