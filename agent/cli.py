"""``backdesk-agent``: enroll this machine, run the service, and more.

Every command exits 0 on success and 1 with one sentence on stderr on failure; commands
that print a result take ``--json``.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import logging
import os
import signal
import sys
import time
from dataclasses import asdict
from pathlib import Path
from typing import Any, NoReturn
from urllib.parse import urlsplit

from . import __version__
from .config import AgentDir, default_config_dir
from .errors import AgentError
from .outbox import Outbox

# The link (websockets, TLS) and Get help are imported by the commands that use them:
# `inventory` and `diagnose` start faster without them.


def _emit(args: argparse.Namespace, result: dict[str, Any], text: str) -> None:
    print(json.dumps(result) if args.json else text, flush=True)


def _progress(args: argparse.Namespace) -> Any:
    def show(message: str) -> None:
        if not args.json:
            print(f"{message}...", file=sys.stderr, flush=True)

    return show


async def _enroll(args: argparse.Namespace) -> None:
    from .link import enroll

    agent_dir = AgentDir(args.config_dir)
    if agent_dir.enrollment_path.exists() and not args.force:
        raise AgentError(
            f"this agent is already enrolled ({agent_dir.enrollment_path}); "
            "use --force to enroll again with a new identity"
        )
    result = await enroll(
        agent_dir, args.coordinator, args.token, args.fingerprint, _progress(args)
    )
    _emit(
        args,
        {
            "device_id": result.device_id,
            "hostname": result.hostname,
            "coordinator": args.coordinator,
        },
        f"Enrolled {result.hostname} as device {result.device_id}",
    )


async def _run(args: argparse.Namespace) -> None:
    from .link import Service

    service = Service(AgentDir(args.config_dir))
    task = asyncio.current_task()
    assert task is not None
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, task.cancel)
    logging.getLogger("backdesk.agent").info(
        "backdesk-agent %s for %s", __version__, service.enrollment.coordinator
    )
    with contextlib.suppress(asyncio.CancelledError):
        await service.run()


def _read_message(args: argparse.Namespace) -> str:
    if args.message is not None:
        return str(args.message)
    if sys.stdin.isatty():
        return input("Describe the problem: ")
    return sys.stdin.read()


def _confirm(args: argparse.Namespace) -> bool:
    if args.yes or not sys.stdin.isatty():
        return True
    return input("Send this to the help desk? [y/N] ").strip().lower() in ("y", "yes")


def _has_display() -> bool:
    return sys.platform in ("win32", "darwin") or bool(os.environ.get("DISPLAY"))


async def _get_help(args: argparse.Namespace) -> None:
    from .gethelp.request import HelpRequest, submit

    agent_dir = AgentDir(args.config_dir)
    enrollment = agent_dir.load_enrollment()  # say "enroll first" before asking anything
    excluded = {name.strip() for value in args.exclude for name in value.split(",") if name.strip()}
    if not args.no_gui and _has_display():
        from .gethelp import window

        await window.run(agent_dir, args.message or "", excluded, as_json=args.json)
        return
    request = HelpRequest.collect(
        _read_message(args),
        excluded,
        clock_offset=agent_dir.clock_offset(time.time()),
        dns_name=urlsplit(enrollment.coordinator).hostname,
    )
    out = sys.stderr if args.json else sys.stdout
    print("This will be sent to the help desk:\n", file=out)
    print(request.summary(), file=out)
    if args.show_data:
        print("\n" + request.full_data(), file=out)
    else:
        print("\n(--show-data prints everything that is attached)", file=out)
    if not _confirm(args):
        raise AgentError("nothing was sent")
    request.body("REQ-00000000")  # validate the message before anything is stored
    submission = await submit(agent_dir, request)
    if submission.status == "created":
        text = f"Your request was sent. Your reference number is {submission.reference}."
    else:
        text = (
            "The help desk cannot be reached right now. Your request is saved as "
            f"{submission.reference} and will be sent as soon as the connection is back."
        )
    _emit(args, asdict(submission), text)


def _diagnose(args: argparse.Namespace) -> None:
    from . import findings

    try:  # an enrolled agent checks that its coordinator's name resolves
        host = urlsplit(AgentDir(args.config_dir).load_enrollment().coordinator).hostname
    except (AgentError, ValueError):
        host = None
    offset = AgentDir(args.config_dir).clock_offset(time.time())
    found, checked = findings.diagnose(dns_name=host, clock_offset=offset)
    text = "\n".join(findings.render(f) for f in found) or "No problems found."
    _emit(args, {"findings": [f.to_dict() for f in found], "checked": checked}, text)


def _status(args: argparse.Namespace) -> None:
    agent_dir = AgentDir(args.config_dir)
    enrollment = agent_dir.load_enrollment()
    outbox = Outbox(agent_dir.outbox_path)
    try:
        pending = len(outbox)
        receipts = outbox.receipts(5)
    finally:
        outbox.close()
    result = {
        "device_id": enrollment.device_id,
        "hostname": enrollment.hostname,
        "coordinator": enrollment.coordinator,
        "fingerprint": enrollment.fingerprint,
        "outbox_pending": pending,
        "recent_requests": [
            {"request_id": "REQ-" + key[:8].upper(), **result}
            for key, kind, result, _at in receipts
            if kind == "ticket.request"
        ],
    }
    _emit(args, result, "\n".join(f"{k}: {v}" for k, v in result.items()))


def _inventory(args: argparse.Namespace) -> None:
    from .inventory import collect

    if args.output is not None:
        target = Path(args.output)
        folder = target.parent if str(target.parent) else Path(".")
        if target.is_dir() or not os.access(folder, os.W_OK):
            raise AgentError(f"cannot write the inventory to {args.output}: not a writable file")
    print("Collecting the inventory...", file=sys.stderr, flush=True)
    try:
        document = collect()
    except Exception as exc:  # any collector failure is one sentence, not a traceback
        raise AgentError(f"the inventory could not be collected: {exc}") from exc
    result = document if args.format == "glpi" else document["content"]
    data = json.dumps(result, indent=None if args.format == "glpi" else 2, ensure_ascii=False)
    if args.output is None:
        sys.stdout.write(data + "\n")
        sys.stdout.flush()
        return
    try:
        Path(args.output).write_text(data + "\n", encoding="utf-8")
    except OSError as exc:
        raise AgentError(f"cannot write the inventory to {args.output}: {exc.strerror}") from exc
    print(f"Inventory written to {args.output}", file=sys.stderr, flush=True)


class _Parser(argparse.ArgumentParser):
    """Usage errors are failures like any other: one sentence, exit status 1."""

    def error(self, message: str) -> NoReturn:
        self.exit(1, f"{self.prog}: error: {message} (see --help)\n")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="backdesk-agent", description="Backdesk agent: remote help for this machine."
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    parser.add_argument(
        "--config-dir",
        type=Path,
        default=default_config_dir(),
        help=f"identity, pinned certificate and outbox (default {default_config_dir()})",
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="log debug messages")
    common = _Parser(add_help=False)
    common.add_argument("--json", action="store_true", help="print the result as JSON")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    p = sub.add_parser("enroll", parents=[common], help="register this machine with a coordinator")
    p.add_argument("--coordinator", required=True, help="https://HOST:PORT")
    p.add_argument("--token", required=True, help="one-time enrollment token")
    p.add_argument(
        "--fingerprint", required=True, help="the coordinator's certificate, sha256:<64 hex>"
    )
    p.add_argument("--force", action="store_true", help="replace an existing enrollment")
    p.set_defaults(run=_enroll)

    p = sub.add_parser("run", help="the service: keep the link up, deliver the outbox")
    p.set_defaults(run=_run, json=False)

    p = sub.add_parser("get-help", parents=[common], help="ask the help desk for help")
    p.add_argument("--message", help="what is wrong (asked for when missing)")
    p.add_argument("--no-gui", action="store_true", help="use the terminal, not a window")
    p.add_argument(
        "--exclude",
        action="append",
        default=[],
        metavar="SECTION",
        help="leave a diagnostics section out: system, cpu, memory, disks, network, processes",
    )
    p.add_argument("--show-data", action="store_true", help="print all the attached data")
    p.add_argument("-y", "--yes", action="store_true", help="send without asking to confirm")
    p.set_defaults(run=_get_help)

    p = sub.add_parser("diagnose", parents=[common], help="find what is wrong with this machine")
    p.set_defaults(run=_diagnose)

    p = sub.add_parser(
        "inventory", help="print this machine's full inventory (GLPI format), offline"
    )
    p.add_argument(
        "--format",
        choices=("glpi", "json"),
        default="glpi",
        help="glpi: the exact GLPI inventory document; json: its content, indented for people",
    )
    p.add_argument("-o", "--output", metavar="FILE", help="write to FILE instead of stdout")
    p.set_defaults(run=_inventory, json=False)

    p = sub.add_parser("status", parents=[common], help="show enrollment and outbox")
    p.set_defaults(run=_status)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    logging.getLogger("websockets").setLevel(logging.WARNING)
    try:
        result = args.run(args)
        if asyncio.iscoroutine(result):
            asyncio.run(result)
    except AgentError as exc:
        print(f"backdesk-agent: error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
