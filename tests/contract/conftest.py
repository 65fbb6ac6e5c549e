"""Fixtures of the contract tests (the real engine parsers)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest


@pytest.fixture(scope="session")
def model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny local stand-in for the model folder: parse_args needs --model-path to be a local
    folder (else Dynamo downloads it), and a config.json is all the parse reads."""
    path = tmp_path_factory.mktemp("model")
    (path / "config.json").write_text(json.dumps({"architectures": ["DeepseekV3ForCausalLM"], "model_type": "deepseek_v3"}))
    return path
