"""The ``sipspeak`` command. An error is one line on stderr and a non-zero exit status."""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
from collections.abc import Sequence
from pathlib import Path

from . import __version__
from .config import Config, ConfigError, load_config, parse_hostport

EXIT_ERROR = 1


class CliError(Exception):
    pass


def _config_path(arg: str | None) -> Path | None:
    if arg:
        return Path(arg)
    env = os.environ.get("SIPSPEAK_CONFIG")
    if env:
        return Path(env)
    default = Path("config/sipspeak.toml")
    return default if default.is_file() else None


def _load(args: argparse.Namespace) -> Config:
    config = load_config(_config_path(getattr(args, "config", None)))
    overrides: dict[tuple[str, str], object] = {}
    if getattr(args, "data_dir", None):
        overrides[("storage", "data_dir")] = args.data_dir
    if getattr(args, "web", None):
        overrides[("web", "listen")] = args.web
    if getattr(args, "sip", None):
        try:
            parse_hostport(args.sip, what="--sip")
        except ValueError as exc:
            raise ConfigError(f"--sip: {exc}") from None
        overrides[("sip", "listen")] = [f"udp:{args.sip}", f"tcp:{args.sip}"]
    return config.with_overrides(overrides) if overrides else config


def _common(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", metavar="FILE", help="settings file (TOML)")
    parser.add_argument("--data-dir", metavar="DIR", help="data directory (overrides the config)")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="sipspeak", description="SipSpeak call center")
    parser.add_argument("--version", action="version", version=f"sipspeak {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)

    serve = sub.add_parser("serve", help="run the call center")
    _common(serve)
    serve.add_argument("--web", metavar="HOST:PORT", help="web listen address")
    serve.add_argument("--sip", metavar="HOST:PORT", help="SIP listen address (UDP and TCP)")

    user = sub.add_parser("user", help="manage users").add_subparsers(dest="action", required=True)
    add = user.add_parser("add", help="add a user")
    _common(add)
    add.add_argument("--role", required=True, choices=["admin", "supervisor", "operator"])
    add.add_argument("--name", required=True)
    add.add_argument("--email", required=True)
    add.add_argument("--password", required=True)
    add.add_argument("--phone", default="")
    add.add_argument("--extension")
    add.add_argument("--sip-password")

    token = sub.add_parser("token", help="API tokens").add_subparsers(dest="action", required=True)
    create = token.add_parser("create", help="create an API token (printed once)")
    _common(create)
    create.add_argument("--email", required=True)
    create.add_argument("--name", default="")

    db = sub.add_parser("db", help="database").add_subparsers(dest="action", required=True)
    migrate = db.add_parser("migrate", help="apply pending migrations")
    _common(migrate)

    amd = sub.add_parser("amd-eval", help="evaluate answering-machine detection on WAV files",
                         add_help=False)
    amd.add_argument("rest", nargs=argparse.REMAINDER)
    numbering = sub.add_parser("numbering", help="numbering registry index")
    numbering.add_argument("rest", nargs=argparse.REMAINDER)
    return parser


async def _with_db(config: Config, action):  # type: ignore[no-untyped-def]
    from .app import open_database

    db = await open_database(config)
    try:
        return await action(db)
    finally:
        await db.close()


def _user_add(args: argparse.Namespace) -> int:
    from .accounts import NewUser, create_user

    user = NewUser(role=args.role, full_name=args.name, email=args.email, password=args.password,
                   phone=args.phone, extension=args.extension, sip_password=args.sip_password)
    user_id = asyncio.run(_with_db(_load(args), lambda db: create_user(db, user)))
    print(f"user {user_id} created: {args.email} ({args.role})")
    return 0


def _token_create(args: argparse.Namespace) -> int:
    from .accounts import create_token

    token = asyncio.run(_with_db(_load(args), lambda db: create_token(db, args.email, name=args.name)))
    print(token)
    return 0


def _db_migrate(args: argparse.Namespace) -> int:
    from .app import check_data_dir
    from .storage import Database

    config = _load(args)
    check_data_dir(config.data_dir)

    async def run() -> tuple[list[int], int]:
        db = await Database.open(config.database_path, migrate=False)
        try:
            applied = await db.migrate()
            return applied, await db.schema_version()
        finally:
            await db.close()

    applied, version = asyncio.run(run())
    if applied:
        print(f"applied migrations {', '.join(map(str, applied))}; schema version {version}")
    else:
        print(f"schema is up to date (version {version})")
    return 0


def _serve(args: argparse.Namespace) -> int:
    from .app import run_serve

    run_serve(_load(args))
    return 0


def _delegate(module: str, rest: Sequence[str]) -> int:
    import importlib

    try:
        target = importlib.import_module(module)
    except ImportError as exc:
        raise CliError(f"this command is unavailable: {exc}") from None
    return int(target.main(list(rest)))


def _refresh_args(rest: list[str]) -> list[str]:
    """``numbering refresh`` writes into the data directory unless told otherwise, so that a
    reinstall of the package keeps the refreshed index (``serve`` loads it from there)."""
    from .app import NUMBERING_INDEX

    parser = argparse.ArgumentParser(add_help=False)
    _common(parser)
    parser.add_argument("--output")
    known, others = parser.parse_known_args(rest)
    if known.output:
        return [*others, "--output", known.output]
    if "-h" in others or "--help" in others:
        return others
    config = _load(known)
    return [*others, "--output", str(config.data_dir / NUMBERING_INDEX)]


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    # Commands implemented elsewhere take their own arguments untouched.
    if argv[:1] == ["amd-eval"]:
        return _run(lambda: _delegate("sipspeak.media.amd.evaluate", argv[1:]))
    if argv[:2] == ["numbering", "refresh"]:
        return _run(lambda: _delegate("sipspeak.crm.numbering_refresh", _refresh_args(argv[2:])))
    args = build_parser().parse_args(argv)
    handlers = {
        ("serve", None): _serve,
        ("user", "add"): _user_add,
        ("token", "create"): _token_create,
        ("db", "migrate"): _db_migrate,
    }
    handler = handlers.get((args.command, getattr(args, "action", None)))
    if handler is None:
        build_parser().error(f"unknown command {' '.join(argv[:2])}")
    return _run(lambda: handler(args))


def _run(call) -> int:  # type: ignore[no-untyped-def]
    from .accounts import AccountError
    from .app import StartupError
    from .storage import StorageError

    try:
        return int(call())
    except (ConfigError, StartupError, StorageError, AccountError, CliError, ValueError) as exc:
        print(f"sipspeak: error: {exc}", file=sys.stderr)
        return EXIT_ERROR
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
