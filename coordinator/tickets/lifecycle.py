"""The ticket lifecycle, as data.

Everything that decides which status follows which lives in ``TRANSITIONS``: an action
not listed for a status is refused (HTTP 409) and changes nothing. Tests walk the table.

    new ─assign→ assigned ─start→ in_progress ─wait_for_user→ waiting_user ─resume→ …
    any open status ─escalate→ escalated (level + 1) ─take/assign→ …
    in_progress/assigned/escalated ─dispatch→ onsite (on-site staff)
    any open status ─resolve→ resolved ─close→ closed;  resolved/closed ─reopen→ in_progress
"""

from __future__ import annotations

from enum import StrEnum


class Status(StrEnum):
    NEW = "new"
    ASSIGNED = "assigned"
    IN_PROGRESS = "in_progress"
    WAITING_USER = "waiting_user"
    ESCALATED = "escalated"
    ONSITE = "onsite"
    RESOLVED = "resolved"
    CLOSED = "closed"


class Action(StrEnum):
    TAKE = "take"  # assign to myself and start
    ASSIGN = "assign"  # give to someone (assignee required)
    START = "start"
    WAIT_FOR_USER = "wait_for_user"
    RESUME = "resume"
    ESCALATE = "escalate"  # one level up, back to that level's queue
    DISPATCH = "dispatch"  # send on-site staff (assignee with the onsite role)
    RESOLVE = "resolve"  # resolution required
    CLOSE = "close"
    REOPEN = "reopen"


S, A = Status, Action

TRANSITIONS: dict[tuple[Status, Action], Status] = {
    (S.NEW, A.TAKE): S.IN_PROGRESS,
    (S.NEW, A.ASSIGN): S.ASSIGNED,
    (S.NEW, A.ESCALATE): S.ESCALATED,
    (S.NEW, A.RESOLVE): S.RESOLVED,
    (S.ASSIGNED, A.TAKE): S.IN_PROGRESS,
    (S.ASSIGNED, A.ASSIGN): S.ASSIGNED,
    (S.ASSIGNED, A.START): S.IN_PROGRESS,
    (S.ASSIGNED, A.ESCALATE): S.ESCALATED,
    (S.ASSIGNED, A.DISPATCH): S.ONSITE,
    (S.ASSIGNED, A.RESOLVE): S.RESOLVED,
    (S.IN_PROGRESS, A.ASSIGN): S.ASSIGNED,
    (S.IN_PROGRESS, A.WAIT_FOR_USER): S.WAITING_USER,
    (S.IN_PROGRESS, A.ESCALATE): S.ESCALATED,
    (S.IN_PROGRESS, A.DISPATCH): S.ONSITE,
    (S.IN_PROGRESS, A.RESOLVE): S.RESOLVED,
    (S.WAITING_USER, A.RESUME): S.IN_PROGRESS,
    (S.WAITING_USER, A.ESCALATE): S.ESCALATED,
    (S.WAITING_USER, A.RESOLVE): S.RESOLVED,
    (S.ESCALATED, A.TAKE): S.IN_PROGRESS,
    (S.ESCALATED, A.ASSIGN): S.ASSIGNED,
    (S.ESCALATED, A.ESCALATE): S.ESCALATED,
    (S.ESCALATED, A.DISPATCH): S.ONSITE,
    (S.ESCALATED, A.RESOLVE): S.RESOLVED,
    (S.ONSITE, A.RESUME): S.IN_PROGRESS,
    (S.ONSITE, A.RESOLVE): S.RESOLVED,
    (S.RESOLVED, A.CLOSE): S.CLOSED,
    (S.RESOLVED, A.REOPEN): S.IN_PROGRESS,
    (S.CLOSED, A.REOPEN): S.IN_PROGRESS,
}

OPEN_STATUSES = frozenset(s for s in Status if s not in (S.RESOLVED, S.CLOSED))


def next_status(status: Status, action: Action) -> Status | None:
    """The status after ``action``, or None when the lifecycle does not allow it."""
    return TRANSITIONS.get((status, action))


def allowed_actions(status: Status) -> list[Action]:
    return [a for (s, a) in TRANSITIONS if s is status]
