"""A Get-help request: what the user wrote, the diagnostics they agreed to send, and
its submission through the durable outbox.

The request is written to the outbox before anything is sent, so it survives a crash,
a reboot or a coordinator that is down; then ``submit`` tries to deliver it at once to
show the ticket's reference. If that fails, the ``run`` service delivers it later, and
the idempotency key makes sure it opens exactly one ticket.
"""

from __future__ import annotations

import asyncio
import getpass
import json
import logging
import uuid
from dataclasses import dataclass, field
from typing import Any, Literal

from websockets.exceptions import WebSocketException

from ..config import AgentDir
from ..diagnostics import Section, snapshot
from ..errors import AgentError, Unreachable
from ..findings import Finding, count_line, evaluate
from ..findings import collect as collect_snapshot
from ..link import LinkLost, Service
from ..outbox import Outbox

log = logging.getLogger(__name__)

KIND = "ticket.request"
DELIVERY_WAIT = 8.0
MAX_MESSAGE = 20000


def request_id_for(key: str) -> str:
    """A short number the user can quote on the phone before the ticket exists."""
    return "REQ-" + key[:8].upper()


@dataclass
class HelpRequest:
    message: str
    sections: list[Section]
    excluded: set[str] = field(default_factory=set)
    requester: str = field(default_factory=getpass.getuser)
    findings: list[Finding] = field(default_factory=list)

    @classmethod
    def collect(
        cls,
        message: str = "",
        excluded: set[str] | None = None,
        clock_offset: float | None = None,
        dns_name: str | None = None,
    ) -> HelpRequest:
        sections = snapshot()
        unknown = (excluded or set()) - {s.name for s in sections}
        if unknown:
            raise AgentError(
                f"unknown section {sorted(unknown)[0]!r}: choose from "
                + ", ".join(s.name for s in sections)
            )
        try:
            findings, _checked = evaluate(
                collect_snapshot(sections=sections, clock_offset=clock_offset, dns_name=dns_name)
            )
        except Exception:  # a diagnosis bug must never stop a user from asking for help
            log.exception("could not evaluate findings")
            findings = []
        return cls(message, sections, set(excluded or ()), findings=findings)

    @property
    def included(self) -> list[Section]:
        return [s for s in self.sections if s.name not in self.excluded]

    @property
    def included_findings(self) -> list[Finding]:
        """Findings whose evidence comes from a section the user did not leave out."""
        return [f for f in self.findings if f.section not in self.excluded]

    def body(self, request_id: str) -> dict[str, Any]:
        message = self.message.strip()
        if not message:
            raise AgentError("describe the problem first: the message is empty")
        if len(message) > MAX_MESSAGE:
            raise AgentError(f"the message is too long ({len(message)} > {MAX_MESSAGE} characters)")
        return {
            "message": message,
            "requester": self.requester[:200],
            "request_id": request_id,
            "diagnostics": {s.name: s.data for s in self.included},
            "findings": [f.to_dict() for f in self.included_findings],
            "excluded": sorted(self.excluded),
        }

    def summary(self) -> str:
        """What will be sent, as a person reads it."""
        lines = [f"From: {self.requester}", ""]
        if self.findings:
            lines.append(f"  {count_line(self.findings)}")
            for f in self.findings:
                mark = "  (left out)" if f.section in self.excluded else ""
                lines.append(f"    {f.severity.upper()}: {f.summary}{mark}")
        else:
            lines.append("  Findings: no problems found")
        lines.append("")
        for s in self.sections:
            mark = "  (left out)" if s.name in self.excluded else ""
            lines.append(f"  {s.title}: {s.summary}{mark}")
        return "\n".join(lines)

    def full_data(self) -> str:
        return json.dumps({s.name: s.data for s in self.included}, indent=2, default=str)


@dataclass(frozen=True)
class Submission:
    reference: str
    status: Literal["created", "queued"]
    request_id: str


async def submit(
    agent_dir: AgentDir, request: HelpRequest, wait: float = DELIVERY_WAIT
) -> Submission:
    """Write the request to the outbox, then try to deliver it now."""
    enrollment = agent_dir.load_enrollment()  # fail early and clearly when not enrolled
    key = uuid.uuid4().hex
    request_id = request_id_for(key)
    outbox = Outbox(agent_dir.outbox_path)
    try:
        outbox.put(KIND, request.body(request_id), key=key)
        try:
            service = Service(agent_dir, outbox)
            async with asyncio.timeout(wait):
                results = await service.deliver_now({key})
            result = results.get(key, {})
            if "refused" in result:
                raise AgentError(f"the help desk refused the request: {result.get('message')}")
            reference = result.get("reference")
        except (OSError, TimeoutError, WebSocketException, LinkLost, Unreachable) as exc:
            log.info(
                "could not reach %s now (%s); the request is queued", enrollment.coordinator, exc
            )
            reference = None
        receipt = outbox.receipt(key)  # the run service may have delivered it meanwhile
        if reference is None and receipt:
            reference = receipt.get("reference")
    finally:
        outbox.close()
    if reference:
        return Submission(str(reference), "created", request_id)
    return Submission(request_id, "queued", request_id)
