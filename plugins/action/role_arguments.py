# Copyright (c) 2026 wideep.gb200 authors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""wideep.gb200.role_arguments: every role's variables checked against its meta/argument_specs.yml on
every host it will run on, once, on the controller, all problems at once, before anything changes.

Ansible checks a role's arguments with a task of its own on every host, each time the role is
included (a forked worker per host and role: on an 18-tray rack's no-op run 13 roles x 18 trays of
them). The collection's playbooks run this once instead and include their roles with
``rolespec_validate: false``; a role used on its own keeps Ansible's check."""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml
from ansible import context
from ansible.errors import AnsibleError
from ansible.module_utils.common.arg_spec import ArgumentSpecValidator
from ansible.module_utils.common.parameters import remove_values
from ansible.plugins.action import ActionBase

ROLES_DIR = Path(__file__).resolve().parents[2] / "roles"
ARGUMENT_SPEC = {
    "roles": {
        "type": "list",
        "elements": "dict",
        "required": True,
        "options": {
            "name": {"type": "str", "required": True},
            "hosts": {"type": "list", "elements": "str", "required": True},
            "tags": {"type": "list", "elements": "str", "default": []},
        },
    },
    "skip_variable": {"type": "str"},
}


def role_options(role: str, roles_dir: Path = ROLES_DIR) -> dict[str, Any]:
    """The options of a role's main entry point (meta/argument_specs.yml), as Ansible's own check reads them."""
    for name in ("argument_specs.yml", "argument_specs.yaml"):
        path = roles_dir / role / "meta" / name
        if path.is_file():
            data = yaml.safe_load(path.read_text()) or {}
            return dict((data.get("argument_specs") or {}).get("main", {}).get("options") or {})
    raise AnsibleError(f"wideep.gb200.role_arguments: role {role!r} has no meta/argument_specs.yml under {roles_dir}")


def selected(tags: list[str], run_tags: Any, skip_tags: Any) -> bool:
    """Whether this run's --tags / --skip-tags run the tasks of a role tagged so (untagged: always)."""
    if not tags:
        return True
    run = set(run_tags or ("all",))
    if set(tags) & set(skip_tags or ()):
        return False
    return "all" in run or "tagged" in run or bool(set(tags) & run)


def resolve_hosts(names: list[str], groups: Mapping[str, Any], play_hosts: list[str] | None) -> list[str]:
    """Group names to their hosts (other names are hosts), in order, once each; only the play's hosts
    where the play has any (so that --limit applies, as to Ansible's own check)."""
    out: list[str] = []
    for name in names:
        for host in groups.get(name, [name]):
            if host not in out and (play_hosts is None or host in play_hosts):
                out.append(host)
    return out


def check_host(host: str, role: str, options: Mapping[str, Any], variables: Mapping[str, Any]) -> tuple[list[str], list[str]]:
    """(problems, unchecked) for one host and role: the messages of Ansible's own check of the role's
    options this host sets, each naming the host, the role and the fix, secrets masked; the names of
    values that could not be templated here (the role reads them later, facts in hand)."""
    values: dict[str, Any] = {}
    unchecked: list[str] = []
    for name in options:
        if name not in variables:
            continue
        try:
            values[name] = variables[name]
        except AnsibleError:
            unchecked.append(name)
    checked = ArgumentSpecValidator(dict(options)).validate(values, validate_role_argument_spec=True)
    messages = remove_values(checked.error_messages, checked._no_log_values)  # pylint: disable=protected-access # the values to mask
    problems = [
        f"{host}: {message} (a variable of role wideep.gb200.{role}; fix it in the inventory as `ansible-doc -t role wideep.gb200.{role}` says)"
        for message in messages
    ]
    return problems, unchecked


def skip_problem(host: str, variable: str, value: Any, names: list[str]) -> tuple[list[str], str | None]:
    """(the roles this host skips, the problem with its value or None)."""
    if not value:  # as `default([], true)`: unset, empty or null runs every role
        return [], None
    is_list = isinstance(value, (list, tuple))
    unknown = [item for item in value if item not in names] if is_list else []
    if is_list and not unknown:
        return list(value), None
    try:
        shown = json.dumps(value)
    except (TypeError, ValueError):
        shown = repr(value)
    tail = f"; not roles: {', '.join(str(item) for item in unknown)}" if unknown else ""
    return [], f"{host}: {variable} must be a list of these roles ({', '.join(names)}), or [] to run them all; got {shown}{tail}"


class ActionModule(ActionBase):
    _requires_connection = False
    TRANSFERS_FILES = False

    def run(self, tmp: Any = None, task_vars: dict[str, Any] | None = None) -> dict[str, Any]:
        result = super().run(tmp, task_vars)
        args = ArgumentSpecValidator(ARGUMENT_SPEC).validate(dict(self._task.args))
        if args.error_messages:
            result.update(failed=True, msg="wideep.gb200.role_arguments: " + "; ".join(args.error_messages))
            return result
        params = args.validated_parameters
        task_vars = task_vars or {}
        hostvars = task_vars.get("hostvars", {})
        names = [entry["name"] for entry in params["roles"]]
        play_hosts = task_vars.get("ansible_play_hosts_all")
        # A role whose tasks this run's tags leave out is not checked (stage --tags image needs no weights source).
        params["roles"] = [entry for entry in params["roles"] if selected(entry["tags"], context.CLIARGS.get("tags"), context.CLIARGS.get("skip_tags"))]
        for entry in params["roles"]:
            entry["hosts"] = resolve_hosts(entry["hosts"], task_vars.get("groups", {}), play_hosts)
        problems: list[str] = []
        skips: dict[str, list[str]] = {}
        if params["skip_variable"]:
            every = sorted({host for entry in params["roles"] for host in entry["hosts"]})
            for host in every:
                value = hostvars.get(host, {}).get(params["skip_variable"])
                skips[host], problem = skip_problem(host, params["skip_variable"], value, names)
                if problem:
                    problems.append(problem)
        checks = 0
        unchecked: dict[str, list[str]] = {}
        for entry in params["roles"]:
            options = role_options(entry["name"])
            for host in entry["hosts"]:
                if entry["name"] in skips.get(host, []) or host not in hostvars:
                    continue
                found, left = check_host(host, entry["name"], options, hostvars[host])
                problems.extend(found)
                if left:
                    unchecked.setdefault(host, []).extend(left)
                checks += 1
        result.update(changed=False, checks=checks, unchecked=unchecked)
        if problems:
            result.update(failed=True, problems=problems, msg=f"{len(problems)} problem(s) with role variables, nothing was changed:\n" + "\n".join(problems))
        else:
            hosts = {host for entry in params["roles"] for host in entry["hosts"]}
            result["msg"] = f"the variables of {len(params['roles'])} role(s) checked on {len(hosts)} host(s) ({checks} checks)"
        return result
