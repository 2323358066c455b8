"""Errors of the coordinator, written down once.

    CoordinatorError            root; its message is one sentence a person can act on
    ├── ConfigError             bad command-line value or unusable data dir
    ├── NotFound                a named user, device or token does not exist
    ├── Conflict                the thing already exists (user name taken)
    └── ApiError                an HTTP error with a status and a machine-readable code

``ApiError`` is turned into ``{"error": {"code", "message"}}`` in one place
(``api/middleware.py``); the CLI prints any ``CoordinatorError`` as one line and exits 1.
"""

from __future__ import annotations


class CoordinatorError(Exception):
    """Root of the coordinator's own errors."""


class ConfigError(CoordinatorError):
    pass


class NotFound(CoordinatorError):
    pass


class Conflict(CoordinatorError):
    pass


class ApiError(CoordinatorError):
    def __init__(self, status: int, code: str, message: str, field: str | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.field = field  # the request field at fault, for 400s
