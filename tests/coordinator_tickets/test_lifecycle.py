"""The ticket lifecycle table and the priority matrix, walked cell by cell."""

import pytest

from coordinator.tickets.lifecycle import (
    OPEN_STATUSES,
    TRANSITIONS,
    Action,
    Status,
    allowed_actions,
    next_status,
)
from coordinator.tickets.priority import priority


@pytest.mark.parametrize("status", list(Status))
@pytest.mark.parametrize("action", list(Action))
def test_every_cell_is_either_declared_or_refused(status, action):
    result = next_status(status, action)
    if (status, action) in TRANSITIONS:
        assert result is TRANSITIONS[(status, action)]
        assert action in allowed_actions(status)
    else:
        assert result is None
        assert action not in allowed_actions(status)


def test_every_status_is_reachable_from_new():
    seen, frontier = {Status.NEW}, [Status.NEW]
    while frontier:
        current = frontier.pop()
        for action in allowed_actions(current):
            target = next_status(current, action)
            if target not in seen:
                seen.add(target)
                frontier.append(target)
    assert seen == set(Status)


def test_closed_tickets_only_reopen():
    assert allowed_actions(Status.CLOSED) == [Action.REOPEN]
    assert Status.CLOSED not in OPEN_STATUSES and Status.RESOLVED not in OPEN_STATUSES


def test_every_open_status_can_be_resolved():
    for status in OPEN_STATUSES:
        assert next_status(status, Action.RESOLVE) is Status.RESOLVED


@pytest.mark.parametrize(
    ("impact", "urgency", "expected"),
    [
        (1, 1, 1),
        (1, 2, 2),
        (1, 3, 3),
        (2, 1, 2),
        (2, 2, 3),
        (2, 3, 4),
        (3, 1, 3),
        (3, 2, 4),
        (3, 3, 5),
    ],
)
def test_itil_priority_matrix(impact, urgency, expected):
    assert priority(impact, urgency) == expected


@pytest.mark.parametrize(("impact", "urgency"), [(0, 1), (4, 1), (1, 0), (1, 4)])
def test_priority_refuses_values_off_the_matrix(impact, urgency):
    with pytest.raises(ValueError):
        priority(impact, urgency)
