# Copyright (c) 2026 wideep.gb200 authors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""What wideep.gb200.host_info reads of a container, for its module and its action's shell read alike
(`docker container inspect --format TEMPLATE`): never the whole description, which holds the
container's environment (secret values included)."""

from __future__ import annotations

# container_states: the Engine API's State only.
STATE_FORMAT = "{{json .State}}"
# containers: the State, the image ID it runs and its labels (the plan's spec hash is one).
CONTAINER_FORMAT = '{"State":{{json .State}},"Image":{{json .Image}},"Labels":{{json .Config.Labels}}}'
