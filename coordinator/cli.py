"""``backdesk-coordinator``: run the server and administer it.

Every command exits 0 on success and 1 with one sentence on stderr on failure; commands
that print a result take ``--json``.
"""

from __future__ import annotations

import argparse
import asyncio
import getpass
import json
import logging
import signal
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any, NoReturn

from sqlalchemy.exc import DBAPIError

from protocol import identity

from . import __version__, accounts, audit, enrollment, tls
from .datadir import DEFAULT_DATA_DIR, DataDir
from .errors import ConfigError, CoordinatorError
from .settings import Settings
from .storage.engine import create_engine, migrate

log = logging.getLogger("backdesk.coordinator")


def _data_dir(args: argparse.Namespace) -> DataDir:
    return DataDir(Path(args.data_dir)).ensure()


def _db_url(args: argparse.Namespace, data_dir: DataDir) -> str:
    return str(args.db or data_dir.default_db_url())


async def _open_db(args: argparse.Namespace) -> Any:
    data_dir = _data_dir(args)
    engine = create_engine(_db_url(args, data_dir))
    try:
        await migrate(engine)
    except (OSError, DBAPIError) as exc:
        await engine.dispose()
        reason = exc.orig if isinstance(exc, DBAPIError) else exc
        raise ConfigError(f"cannot use the database: {reason}") from exc
    return engine


def _emit(args: argparse.Namespace, result: dict[str, Any], text: str) -> None:
    print(json.dumps(result) if args.json else text)


# --- serve ------------------------------------------------------------------------------


async def _serve(args: argparse.Namespace) -> None:
    from aiohttp import web

    from .app import create_app

    if args.redis:
        raise ConfigError("--redis (several nodes) is not available in this version yet")
    data_dir = _data_dir(args)
    if bool(args.tls_cert) != bool(args.tls_key):
        raise ConfigError("give both --tls-cert and --tls-key, or neither")
    cert, key = (
        (Path(args.tls_cert), Path(args.tls_key))
        if args.tls_cert
        else (
            data_dir.tls_cert,
            data_dir.tls_key,
        )
    )
    if not args.tls_cert and tls.ensure_certificate(cert, key):
        log.info("created a self-signed TLS certificate in %s", cert.parent)
    fingerprint = tls.fingerprint(cert)
    ssl_context = tls.server_context(cert, key)

    engine = await _open_db(args)
    settings = Settings(
        fingerprint=fingerprint,
        heartbeat_interval=args.heartbeat_interval,
        handshake_timeout=args.handshake_timeout,
        webhook_poll_interval=args.webhook_poll_interval,
        sla_check_interval=args.sla_check_interval,
        relay_tap=Path(args.relay_tap) if args.relay_tap else None,
    )
    runner = web.AppRunner(create_app(engine, settings), access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, args.host, args.port, ssl_context=ssl_context)
    try:
        await site.start()
    except OSError as exc:
        await runner.cleanup()
        raise ConfigError(f"cannot listen on {args.host}:{args.port}: {exc.strerror}") from exc
    port = runner.addresses[0][1]
    host = f"[{args.host}]" if ":" in args.host else args.host
    print(f"Backdesk coordinator {__version__} listening on https://{host}:{port}", flush=True)
    print(f"certificate fingerprint: {identity.format_fingerprint(fingerprint)}", flush=True)

    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()
    log.info("shutting down")
    await runner.cleanup()


# --- administration ---------------------------------------------------------------------


def _fingerprint(args: argparse.Namespace) -> None:
    data_dir = _data_dir(args)
    # The same certificate `serve` would make, so it can be pinned before the first start.
    tls.ensure_certificate(data_dir.tls_cert, data_dir.tls_key)
    value = identity.format_fingerprint(tls.fingerprint(data_dir.tls_cert))
    _emit(args, {"fingerprint": value}, value)


def _read_new_password(args: argparse.Namespace) -> str:
    if args.password_stdin and not sys.stdin.isatty():
        lines = sys.stdin.read().splitlines()
        if not lines:
            raise ConfigError("no password on standard input")
        password = lines[0]
        confirmation = lines[1] if len(lines) > 1 else password
    else:
        password = getpass.getpass("Password: ")
        confirmation = getpass.getpass("Password again: ")
    if password != confirmation:
        raise ConfigError("the two passwords differ")
    return accounts.validate_password(password)


async def _user_add(args: argparse.Namespace) -> None:
    accounts.validate_name(args.name)
    password = _read_new_password(args)
    engine = await _open_db(args)
    try:
        user = await accounts.add_user(engine, args.name, args.role, password)
    finally:
        await engine.dispose()
    _emit(
        args,
        {"id": user.id, "name": user.name, "role": user.role, "totp_uri": user.totp_uri},
        f"created user {user.name} ({user.role})\n"
        f"add this to the user's authenticator app (console sign-in needs it):\n{user.totp_uri}",
    )


async def _user_list(args: argparse.Namespace) -> None:
    engine = await _open_db(args)
    try:
        users = await accounts.list_users(engine)
    finally:
        await engine.dispose()
    text = "\n".join(f"{u['name']}\t{u['role']}" for u in users) or "no users yet"
    _emit(args, {"users": users}, text)


async def _apikey_create(args: argparse.Namespace) -> None:
    engine = await _open_db(args)
    try:
        key = await accounts.create_api_key(engine, args.user)
    finally:
        await engine.dispose()
    _emit(args, {"key": key, "user": args.user}, key)


async def _token_create(args: argparse.Namespace) -> None:
    lifetime = enrollment.parse_duration(args.expires)
    engine = await _open_db(args)
    try:
        token, expires_at = await enrollment.create_token(engine, lifetime)
    finally:
        await engine.dispose()
    _emit(args, {"token": token, "expires_at": expires_at.isoformat()}, token)


async def _audit_verify(args: argparse.Namespace) -> None:
    engine = await _open_db(args)
    try:
        result = await audit.verify(engine)
    finally:
        await engine.dispose()
    if not result.ok:
        if args.json:
            print(
                json.dumps(
                    {
                        "ok": False,
                        "entries": result.entries,
                        "first_bad": result.first_bad,
                        "reason": result.reason,
                    }
                )
            )
        raise CoordinatorError(
            f"audit log is broken at entry {result.first_bad}: {result.reason} "
            f"({result.entries} entries before it are intact)"
        )
    _emit(
        args,
        {"ok": True, "entries": result.entries},
        f"audit log intact: {result.entries} entries, hash chain verified",
    )


async def _migrate(args: argparse.Namespace) -> None:
    engine = await _open_db(args)
    await engine.dispose()
    _emit(args, {"status": "ok"}, "database schema is up to date")


# --- parser -----------------------------------------------------------------------------


def _positive(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if not 0.1 <= value <= 3600:
        raise argparse.ArgumentTypeError("must be between 0.1 and 3600 seconds")
    return value


def _port(text: str) -> int:
    if not text.isdigit() or not 0 <= int(text) <= 65535:
        raise argparse.ArgumentTypeError(f"not a TCP port: {text!r}")
    return int(text)


class _Parser(argparse.ArgumentParser):
    """Usage errors are failures like any other: one sentence, exit status 1."""

    def error(self, message: str) -> NoReturn:
        self.exit(1, f"{self.prog}: error: {message} (see --help)\n")


def build_parser() -> argparse.ArgumentParser:
    common = _Parser(add_help=False)
    common.add_argument(
        "--data-dir",
        default=str(DEFAULT_DATA_DIR),
        help=f"database, certificate and key (default {DEFAULT_DATA_DIR}, or $BACKDESK_DATA_DIR)",
    )
    common.add_argument("--db", help="database URL (default: SQLite in the data dir)")
    common.add_argument("--json", action="store_true", help="print the result as JSON")

    parser = _Parser(
        prog="backdesk-coordinator", description="Backdesk coordinator: the help desk's server."
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    parser.add_argument("-v", "--verbose", action="store_true", help="log debug messages")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    serve = sub.add_parser("serve", parents=[common], help="run the server")
    serve.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1)")
    serve.add_argument("--port", type=_port, default=8443, help="TCP port (default 8443)")
    serve.add_argument("--tls-cert", help="PEM certificate instead of the self-signed one")
    serve.add_argument("--tls-key", help="PEM private key for --tls-cert")
    serve.add_argument("--redis", help="Redis URL, to share presence between nodes")
    serve.add_argument(
        "--heartbeat-interval", type=_positive, default=15.0, help="seconds (default 15)"
    )
    serve.add_argument(
        "--handshake-timeout", type=_positive, default=10.0, help="seconds (default 10)"
    )
    serve.add_argument(
        "--webhook-poll-interval",
        type=_positive,
        default=1.0,
        help="seconds between looks for webhook deliveries that are due (default 1)",
    )
    serve.add_argument(
        "--sla-check-interval", type=_positive, default=30.0, help="seconds (default 30)"
    )
    serve.add_argument(
        "--relay-tap",
        metavar="FILE",
        help="append every remote-session message the relay forwards to FILE, to check "
        "for yourself that the coordinator only ever holds ciphertext (audits, tests)",
    )
    serve.set_defaults(run=_serve)

    fp = sub.add_parser("fingerprint", parents=[common], help="print the TLS fingerprint")
    fp.set_defaults(run=_fingerprint)

    user = sub.add_parser("user", help="technician accounts").add_subparsers(
        dest="action", required=True, metavar="ACTION"
    )
    add = user.add_parser("add", parents=[common], help="create an account")
    add.add_argument("name")
    add.add_argument("--role", required=True, choices=["l1", "l2", "l3", "onsite", "admin"])
    add.add_argument(
        "--password-stdin",
        action="store_true",
        help="read the password (and an optional confirmation line) from standard input",
    )
    add.set_defaults(run=_user_add)
    user.add_parser("list", parents=[common], help="list accounts").set_defaults(run=_user_list)

    apikey = sub.add_parser("apikey", help="API keys").add_subparsers(
        dest="action", required=True, metavar="ACTION"
    )
    create_key = apikey.add_parser("create", parents=[common], help="create a key for a user")
    create_key.add_argument("--user", required=True)
    create_key.set_defaults(run=_apikey_create)

    token = sub.add_parser("token", help="enrollment tokens").add_subparsers(
        dest="action", required=True, metavar="ACTION"
    )
    create_token = token.add_parser("create", parents=[common], help="one-time enrollment token")
    create_token.add_argument("--expires", default="24h", help="lifetime like 90s, 15m, 24h, 7d")
    create_token.set_defaults(run=_token_create)

    audit_cmd = sub.add_parser("audit", help="the audit log").add_subparsers(
        dest="action", required=True, metavar="ACTION"
    )
    audit_cmd.add_parser(
        "verify", parents=[common], help="check the hash chain; names the first bad entry"
    ).set_defaults(run=_audit_verify)

    sub.add_parser("migrate", parents=[common], help="upgrade the database schema").set_defaults(
        run=_migrate
    )
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    logging.getLogger("alembic").setLevel(logging.WARNING)
    run: Callable[[argparse.Namespace], Awaitable[None] | None] = args.run
    try:
        result = run(args)
        if result is not None:
            asyncio.run(result)  # type: ignore[arg-type]
    except CoordinatorError as exc:
        print(f"backdesk-coordinator: error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
