"""Fixtures of the loop's tests."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest


def _openai_server_module():
    # Test modules cannot import each other under --import-mode=importlib; load the helper by path.
    name = "opl_tests_openai_server"
    if name in sys.modules:
        return sys.modules[name]
    spec = importlib.util.spec_from_file_location(name, Path(__file__).with_name("openai_server.py"))
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


@pytest.fixture
def openai_server():
    """A scripted OpenAI-compatible server on 127.0.0.1 (tests/loop/openai_server.py), started and stopped."""
    with _openai_server_module().OpenAIServer() as server:
        yield server


@pytest.fixture
def openai_server_module():
    """The helper module itself, for servers with other settings (``reject_response_format=True``)."""
    return _openai_server_module()
