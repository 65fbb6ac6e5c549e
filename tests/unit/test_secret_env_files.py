"""containers' secret env files (roles/containers: wideep.gb200._secret_env_files -> wideep.gb200.files)."""

from __future__ import annotations

import pytest
from ansible.errors import AnsibleFilterError

from ansible_collections.wideep.gb200.plugins.filter.serve import gb200_secret_env_files


def test_one_file_per_container_that_names_secrets_in_the_specs_order() -> None:
    specs = [
        {"name": "etcd", "env_file": "/etc/wideep/secrets/etcd.env", "secret_env": []},
        {"name": "frontend", "env_file": "/etc/wideep/secrets/frontend.env", "secret_env": ["HF_TOKEN", "A_KEY"]},
        {"name": "nats"},
    ]
    files = gb200_secret_env_files(specs, {"HF_TOKEN": "hf_x", "A_KEY": 42, "UNUSED": "u"})
    assert files == {"etc/wideep/secrets/frontend.env": {"content": "HF_TOKEN=hf_x\nA_KEY=42\n"}}


def test_nothing_to_write_without_secret_names() -> None:
    assert gb200_secret_env_files([{"name": "etcd", "env_file": "/e", "secret_env": []}], {}) == {}
    assert gb200_secret_env_files(None, None) == {}


def test_a_name_without_a_value_names_the_container_and_every_missing_name() -> None:
    specs = [{"name": "decode-0-r0", "env_file": "/etc/wideep/secrets/d.env", "secret_env": ["HF_TOKEN", "B", "C"]}]
    with pytest.raises(AnsibleFilterError, match=r"decode-0-r0: no value in containers_secret_env \(gb200_secret_env\) for HF_TOKEN, C$"):
        gb200_secret_env_files(specs, {"B": "b"})


def test_a_relative_env_file_is_refused() -> None:
    with pytest.raises(AnsibleFilterError, match=r"decode-0-r0: env_file 'secrets/d\.env' is not an absolute path"):
        gb200_secret_env_files([{"name": "decode-0-r0", "env_file": "secrets/d.env", "secret_env": ["B"]}], {"B": "b"})
