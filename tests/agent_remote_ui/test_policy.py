"""policy.toml: unattended access only from a file that nobody but an administrator (or
the agent's own user) could have written, and never more than the technician asked for."""

from __future__ import annotations

import logging
import os
from pathlib import Path

import pytest

from agent.remote import policy as policy_module
from agent.remote.policy import Policy, load_policy, narrower, policy_path


@pytest.fixture
def config_dir(tmp_path: Path) -> Path:
    root = tmp_path / "backdesk-agent"
    root.mkdir(mode=0o700)
    root.chmod(0o700)
    return root


def write(config_dir: Path, text: str, mode: int = 0o600) -> Path:
    path = policy_path(config_dir)
    path.write_text(text)
    path.chmod(mode)
    return path


@pytest.mark.parametrize("scope", ["view", "control"])
def test_an_owned_private_file_is_honoured(config_dir, scope):
    policy = load_policy(write(config_dir, f'unattended = "{scope}"\n'))
    assert policy == Policy(scope, None)


def test_no_file_is_no_unattended_access(config_dir):
    assert load_policy(policy_path(config_dir)) == Policy(None, None)


def test_a_file_without_the_key_grants_nothing(config_dir):
    assert load_policy(write(config_dir, "# nothing\n")) == Policy(None, None)


@pytest.mark.parametrize("mode", [0o620, 0o602, 0o666])
def test_a_file_others_can_write_is_ignored(config_dir, mode, caplog):
    with caplog.at_level(logging.WARNING, logger="agent.remote.policy"):
        policy = load_policy(write(config_dir, 'unattended = "control"\n', mode))
    assert policy.unattended is None
    assert "writable by group or others" in (policy.warning or "")
    assert policy.warning in caplog.text


@pytest.mark.parametrize("mode", [0o770, 0o707, 0o1777])
def test_a_directory_others_can_write_is_ignored(config_dir, mode):
    path = write(config_dir, 'unattended = "control"\n')
    config_dir.chmod(mode)
    policy = load_policy(path)
    assert policy.unattended is None
    assert "its directory" in (policy.warning or "")


def test_a_file_owned_by_someone_else_is_ignored(config_dir, monkeypatch):
    path = write(config_dir, 'unattended = "control"\n')
    if os.geteuid() == 0:
        os.chown(path, 65534, -1)
    else:  # we cannot give the file away: pretend to be another user instead
        me = os.geteuid()
        monkeypatch.setattr(policy_module.os, "geteuid", lambda: me + 1)
    policy = load_policy(path)
    assert policy.unattended is None
    assert "owned by uid" in (policy.warning or "")


@pytest.mark.parametrize(
    "text",
    [
        'unattended = "control',  # not TOML
        "unattended = control\n",
        "\x00\x01\x02",
        'unattended = "everything"\n',
        "unattended = true\n",
        'unattended = ["control"]\n',
    ],
)
def test_a_malformed_file_is_ignored_with_a_warning(config_dir, text, caplog):
    with caplog.at_level(logging.WARNING, logger="agent.remote.policy"):
        policy = load_policy(write(config_dir, text))
    assert policy.unattended is None and policy.warning
    assert "ignoring" in caplog.text


def test_a_symbolic_link_is_not_trusted(config_dir, tmp_path):
    target = tmp_path / "elsewhere.toml"
    target.write_text('unattended = "control"\n')
    target.chmod(0o600)
    policy_path(config_dir).symlink_to(target)
    policy = load_policy(policy_path(config_dir))
    assert policy.unattended is None and policy.warning


def test_a_directory_in_its_place_is_ignored(config_dir):
    policy_path(config_dir).mkdir(mode=0o700)
    policy = load_policy(policy_path(config_dir))
    assert policy.unattended is None and policy.warning


def test_a_view_policy_never_grants_control(config_dir):
    policy = load_policy(write(config_dir, 'unattended = "view"\n'))
    assert policy.grants("control") == "view"
    assert policy.grants("view") == "view"


def test_a_control_policy_grants_what_was_asked(config_dir):
    policy = load_policy(write(config_dir, 'unattended = "control"\n'))
    assert policy.grants("view") == "view"
    assert policy.grants("control") == "control"


def test_no_policy_grants_nothing():
    assert Policy().grants("view") is None
    assert narrower(None, "control") is None
    assert narrower("control", None) is None
