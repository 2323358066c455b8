"""Errors of the coordinator, written down once.

    CoordinatorError            root; its message is one sentence a person can act on
    ├── ConfigError             bad command-line value or unusable data dir
    ├── NotFound                a named user, device, ticket or article does not exist
    ├── Conflict                the thing already exists, or the change is not allowed now
    │                           (an illegal ticket transition)
    ├── Invalid                 a value the domain refuses (names the field)
    ├── Forbidden               the caller's role does not grant the permission
    └── ApiError                an HTTP error with a status and a machine-readable code

The API maps them in one place (``api/middleware.py``): NotFound 404, Conflict 409,
Invalid 400, Forbidden 403 (and an audit entry), ApiError its own status.

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


class Invalid(CoordinatorError):
    def __init__(self, message: str, field: str | None = None) -> None:
        super().__init__(message)
        self.field = field


class Forbidden(CoordinatorError):
    def __init__(self, permission: str, message: str, target: str = "") -> None:
        super().__init__(message)
        self.permission = permission
        self.target = target


class ApiError(CoordinatorError):
    def __init__(self, status: int, code: str, message: str, field: str | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.field = field  # the request field at fault, for 400s
