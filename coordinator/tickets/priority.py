"""Priority from impact and urgency (the ITIL matrix), and service levels per priority.

impact \\ urgency   1 high   2 medium   3 low
1 high                 P1       P2        P3
2 medium               P2       P3        P4
3 low                  P3       P4        P5
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncConnection

from ..storage.schema import sla_policies

PRIORITY_NAMES = {1: "critical", 2: "high", 3: "medium", 4: "low", 5: "planning"}


def priority(impact: int, urgency: int) -> int:
    if not (1 <= impact <= 3 and 1 <= urgency <= 3):
        raise ValueError("impact and urgency are 1 (high) to 3 (low)")
    return impact + urgency - 1


@dataclass(frozen=True)
class ServiceLevel:
    own: timedelta
    resolve: timedelta

    def due(self, start: datetime) -> tuple[datetime, datetime]:
        return start + self.own, start + self.resolve


async def service_level(conn: AsyncConnection, prio: int) -> ServiceLevel:
    row = (await conn.execute(select(sla_policies).where(sla_policies.c.priority == prio))).one()
    return ServiceLevel(timedelta(seconds=row.own_seconds), timedelta(seconds=row.resolve_seconds))
