"""Who may do what: the permission matrix, declared once.

The README's table is generated from the same data (``permission_table``), and a test
walks every cell against the API. Checking a permission that is not granted raises a
403 and writes an audit entry (see ``api/middleware.require``).
"""

from __future__ import annotations

from enum import StrEnum


class Role(StrEnum):
    L1 = "l1"
    L2 = "l2"
    L3 = "l3"
    ONSITE = "onsite"
    ADMIN = "admin"


class Permission(StrEnum):
    DEVICE_VIEW = "device.view"
    TICKET_VIEW_ALL = "ticket.view_all"  # every ticket; others see only their own
    TICKET_CREATE = "ticket.create"
    TICKET_COMMENT = "ticket.comment"
    TICKET_WORK = "ticket.work"  # take, assign, change status, resolve, reopen
    TICKET_ESCALATE_L2 = "ticket.escalate_l2"
    TICKET_ESCALATE_L3 = "ticket.escalate_l3"
    TICKET_DISPATCH_ONSITE = "ticket.dispatch_onsite"
    SESSION_REQUEST = "session.request"
    KB_READ = "kb.read"
    KB_WRITE = "kb.write"
    USER_MANAGE = "user.manage"
    ENROLLMENT_MANAGE = "enrollment.manage"
    WEBHOOK_MANAGE = "webhook.manage"
    AUDIT_READ = "audit.read"
    SLA_MANAGE = "sla.manage"


_ALL = frozenset(Role)
_DESK = frozenset({Role.L1, Role.L2, Role.L3, Role.ADMIN})
_BACK = frozenset({Role.L2, Role.L3, Role.ADMIN})

MATRIX: dict[Permission, frozenset[Role]] = {
    Permission.DEVICE_VIEW: _ALL,
    Permission.TICKET_VIEW_ALL: _DESK,
    Permission.TICKET_CREATE: _DESK,
    Permission.TICKET_COMMENT: _ALL,
    Permission.TICKET_WORK: _ALL,  # on-site staff work the tickets dispatched to them
    Permission.TICKET_ESCALATE_L2: _DESK,
    Permission.TICKET_ESCALATE_L3: _BACK,
    Permission.TICKET_DISPATCH_ONSITE: _BACK,
    Permission.SESSION_REQUEST: _BACK,  # L1 cannot start a remote session
    Permission.KB_READ: _ALL,
    Permission.KB_WRITE: _DESK,
    Permission.USER_MANAGE: frozenset({Role.ADMIN}),
    Permission.ENROLLMENT_MANAGE: frozenset({Role.ADMIN}),
    Permission.WEBHOOK_MANAGE: frozenset({Role.ADMIN}),
    Permission.AUDIT_READ: frozenset({Role.ADMIN}),
    Permission.SLA_MANAGE: frozenset({Role.ADMIN}),
}


def allowed(role: str, permission: Permission) -> bool:
    return role in MATRIX[permission]


def permission_table() -> str:
    """The matrix as a Markdown table (for the README)."""
    roles = list(Role)
    lines = [
        "| permission | " + " | ".join(r.value for r in roles) + " |",
        "|---|" + "---|" * len(roles),
    ]
    for permission, granted in MATRIX.items():
        cells = " | ".join("yes" if r in granted else "-" for r in roles)
        lines.append(f"| `{permission.value}` | {cells} |")
    return "\n".join(lines)
