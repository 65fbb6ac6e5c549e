# Copyright (c) 2026 wideep.gb200 authors
# Apache License 2.0 (see LICENSES/Apache-2.0.txt or https://www.apache.org/licenses/LICENSE-2.0)
"""Provisioning, one module per role of the same name (container_runtime, gdrcopy, host_limits, imex,
rdma) and apt.py, the apt sources they share.
"""
