"""Unattended access: ``policy.toml`` in the agent's config dir (DESIGN.md invariant 1).

A machine's administrator may let technicians in without asking the person at the screen::

    unattended = "view"      # or "control"; absent = always ask

Only a file nobody else could have written is honoured: owned by root or by the agent's
own user, not writable by group or others, in a directory that is likewise owned and not
group/other-writable (otherwise anyone who can write there could replace the file). Any
doubt — wrong owner, loose permissions, not TOML, an unknown value — means the file is
ignored with a warning, and ignoring it never grants anything. The scope granted is the
smaller of what the technician asked for and what the policy allows.
"""

from __future__ import annotations

import logging
import os
import stat
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Literal, cast

log = logging.getLogger(__name__)

Scope = Literal["view", "control"]
POLICY_FILE = "policy.toml"
MAX_POLICY_BYTES = 64 * 1024
_RANK: dict[str, int] = {"view": 1, "control": 2}


@dataclass(frozen=True)
class Policy:
    unattended: Scope | None = None
    warning: str | None = None  # why the file was ignored, when it was

    def grants(self, asked: Scope) -> Scope | None:
        """What the policy lets a technician have without asking: min(asked, policy)."""
        return narrower(asked, self.unattended)


def narrower(a: Scope | None, b: Scope | None) -> Scope | None:
    """The smaller of two scopes; None (nothing) is smaller than both."""
    if a is None or b is None:
        return None
    return a if _RANK[a] <= _RANK[b] else b


def policy_path(config_dir: Path) -> Path:
    """Where the policy lives: the root of the agent's config dir (``AgentDir.root``)."""
    return config_dir / POLICY_FILE


def _ownership_problem(what: str, path: Path, st: os.stat_result) -> str | None:
    allowed = {0, os.geteuid()}
    if st.st_uid not in allowed:
        return f"{what} {path} is owned by uid {st.st_uid}, not by root or by this agent's user"
    if st.st_mode & (stat.S_IWGRP | stat.S_IWOTH):
        return f"{what} {path} is writable by group or others (mode {stat.S_IMODE(st.st_mode):o})"
    return None


def _ignored(path: Path, why: str) -> Policy:
    warning = f"ignoring {path}: {why}; unattended access stays off"
    log.warning("%s", warning)
    return Policy(None, warning)


def load_policy(path: Path) -> Policy:
    """Read a policy file; a missing file is no policy, a doubtful one is ignored."""
    path = Path(path)
    if os.name != "posix":
        if path.exists():
            return _ignored(path, "file ownership cannot be checked on this platform")
        return Policy()
    try:
        fd = os.open(
            path, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_NONBLOCK", 0)
        )
    except FileNotFoundError:
        return Policy()
    except OSError as exc:
        # ELOOP: a symbolic link; it could point anywhere, so it is not trusted.
        return _ignored(path, f"cannot open it safely ({exc.strerror})")
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            return _ignored(path, "it is not a regular file")
        if problem := _ownership_problem("the file", path, st):
            return _ignored(path, problem)
        parent = path.absolute().parent
        try:
            parent_st = os.stat(parent)
        except OSError as exc:
            return _ignored(path, f"cannot check its directory {parent} ({exc.strerror})")
        if problem := _ownership_problem("its directory", parent, parent_st):
            return _ignored(path, problem)
        if st.st_size > MAX_POLICY_BYTES:
            return _ignored(path, "it is too large to be a policy file")
        with os.fdopen(fd, "rb", closefd=False) as f:
            raw = f.read(MAX_POLICY_BYTES + 1)
    finally:
        os.close(fd)
    try:
        doc = tomllib.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        return _ignored(path, f"it is not valid TOML ({exc})")
    value = doc.get("unattended")
    if value is None:
        return Policy()
    if not isinstance(value, str) or value not in _RANK:
        return _ignored(path, f'unattended = {value!r} is not "view" or "control"')
    return Policy(cast(Scope, value), None)
