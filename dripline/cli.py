"""The `dripline` command: run services, manage embedded infrastructure, migrate, administer."""

from __future__ import annotations

import argparse
import asyncio
import importlib
import signal
import sys
from collections.abc import Callable
from pathlib import Path

import uvicorn
from fastapi import FastAPI

from dripline.processes import SERVICES, service_port
from shared import logs
from shared.settings import Settings, get_settings


def run_service(name: str) -> None:
    settings = get_settings()
    logs.configure(settings.log_level)
    create_app: Callable[[Settings], FastAPI] = importlib.import_module(SERVICES[name]).create_app
    config = uvicorn.Config(
        create_app(settings),
        host=settings.http_host,
        port=service_port(settings, name),
        log_config=None,
        access_log=False,
        # httptools parses HTTP in C (h11, pure Python, was a tenth of the API's CPU under
        # bench.api_load); uvloop runs the API's event loop (asyncio's own was a fifth). The
        # engine's services keep asyncio's loop: they were not measured on uvloop.
        http="httptools",
        loop="uvloop" if name == "api" else "asyncio",
        lifespan="on",
        timeout_graceful_shutdown=20,
    )
    server = uvicorn.Server(config)
    # uvicorn shuts down gracefully on SIGINT/SIGTERM and then re-raises the signal to the
    # previous handler; a stop that was asked for and completed is a clean exit.
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, _exit_cleanly)
    server.run()
    if not server.started:
        sys.exit(3)


def _exit_cleanly(signum: int, _: object) -> None:
    sys.exit(0)


def cmd_migrate(_: argparse.Namespace) -> None:
    from shared.db.migrate import migrate

    settings = get_settings()
    applied = asyncio.run(migrate(settings.dsn))
    names = ", ".join(f"{m.version:04d}_{m.name}" for m in applied) or "nothing to apply"
    print(f"migrated: {names}")


def cmd_topics(args: argparse.Namespace) -> None:
    from dripline.topics import create_topics

    settings = get_settings()
    report = asyncio.run(
        create_topics(settings.bootstrap_servers, settings.topic_prefix, args.replication_factor)
    )
    print(f"created: {', '.join(report.created) or 'nothing missing'}")
    for name, (have, want) in report.short.items():
        print(f"warning: {name} has {have} partitions, the contract asks for {want}")


def cmd_infra(args: argparse.Namespace) -> None:
    from dripline import supervisor

    settings = get_settings()
    # Starting PostgreSQL may warn (an old state directory secured, a server left running
    # without durability); those warnings belong on the terminal like the rest.
    logs.configure(settings.log_level)
    if args.action == "up":
        supervisor.infra_up(settings)
    elif args.action == "down":
        supervisor.infra_down(settings)
    else:
        print(supervisor.infra_status(settings))


def cmd_admin_create_user(args: argparse.Namespace) -> None:
    from dripline.admin import create_user
    from shared.db.pool import connect

    async def create() -> None:
        connection = await connect(get_settings().dsn)
        try:
            issued = await create_user(connection, args.email, name=args.name)
        finally:
            await connection.close()
        print(f"user {issued.email} ({issued.user_id})")
        print(f"API key (shown once): {issued.plaintext}")

    asyncio.run(create())


def cmd_accounts_login(args: argparse.Namespace) -> None:
    import getpass
    import os

    import httpx

    from dripline.account_login import BadOption, LoginFailed, login, parse_device, parse_proxy

    key = args.key or os.environ.get("DRIPLINE_API_KEY")
    if not key:
        sys.exit("give an API key: --key or DRIPLINE_API_KEY")
    try:
        proxy = None if args.proxy is None else parse_proxy(args.proxy)
        device = None if args.device is None else parse_device(args.device)
        if args.account is not None and (proxy is not None or device is not None):
            raise BadOption("an account logged in again keeps its own proxy and device")
    except BadOption as exc:
        sys.exit(f"dripline accounts login: {exc}")
    settings = get_settings()
    url = args.api or f"http://{settings.http_host}:{service_port(settings, 'api')}"

    async def run() -> None:
        headers = {"Authorization": f"Bearer {key}"}
        async with httpx.AsyncClient(base_url=url, headers=headers, timeout=120) as client:
            await login(client, input, getpass.getpass, print, account_id=args.account,
                        display_name=args.name, proxy=proxy, device=device)  # fmt: skip

    try:
        asyncio.run(run())
    except LoginFailed as exc:
        sys.exit(f"login failed: {exc.args[0]}")


def cmd_fake_telegram(args: argparse.Namespace) -> None:
    from dripline.fake_telegram.run import Options, serve

    rsa_key_out = args.rsa_key_out or get_settings().state_dir / "fake-telegram-rsa.pem"
    options = Options(args.port, rsa_key_out, args.accounts, args.sessions_out, args.quiet)
    asyncio.run(serve(options, lambda line: print(line, flush=True)))


def cmd_asyncapi(args: argparse.Namespace) -> None:
    from shared.messaging.asyncapi import document

    text = document()
    if args.output:
        Path(args.output).write_text(text + "\n")
        print(f"wrote {args.output}")
    else:
        print(text)


def cmd_stats(args: argparse.Namespace) -> None:
    if args.action is None:
        run_service("stats")
        return
    from services.stats.verify import verify

    drifted = asyncio.run(verify(get_settings().dsn, args.settle, repair_drift=args.repair))
    campaigns = len({d.campaign_id for d in drifted})
    if args.repair:
        for difference in drifted:
            print(difference.repaired())
        print(f"statistics verified: {campaigns} campaign(s) repaired to equal a recount")
        sys.exit(0)
    for difference in drifted:
        print(difference)
    print(f"statistics verified: {campaigns} campaign(s) differ from a recount")
    sys.exit(1 if drifted else 0)


def cmd_run(_: argparse.Namespace) -> None:
    from dripline import supervisor

    sys.exit(supervisor.run_all(get_settings()))


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="dripline", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    for name in ("run", "dev"):
        commands.add_parser(name, help="embedded infrastructure, migrations and all four services"
                            ).set_defaults(func=cmd_run)  # fmt: skip
    for name in SERVICES:
        commands.add_parser(name, help=f"run the {name} service").set_defaults(
            func=lambda _, n=name: run_service(n)
        )
    # `dripline stats` runs the service; `dripline stats verify` checks its figures.
    stats = commands.choices["stats"]
    stats.add_argument("action", nargs="?", choices=["verify"], help="verify: recount and compare")
    stats.add_argument(
        "--settle", type=float, default=10.0, help="seconds a difference may last (the stats lag)"
    )
    stats.add_argument(
        "--repair", action="store_true", help="replace drifted figures by the recount"
    )
    stats.set_defaults(func=cmd_stats)
    commands.add_parser("migrate", help="apply pending migrations").set_defaults(func=cmd_migrate)
    topics = commands.add_parser(
        "topics", help="create missing topics (a cluster: --replication-factor 3)"
    )
    topics.add_argument("--replication-factor", type=int, default=1, metavar="N")
    topics.set_defaults(func=cmd_topics)
    infra = commands.add_parser("infra", help="manage the embedded PostgreSQL and broker")
    infra.add_argument("action", choices=["up", "down", "status"])
    infra.set_defaults(func=cmd_infra)
    admin = commands.add_parser("admin", help="administration").add_subparsers(
        dest="admin_command", required=True
    )
    create_user = admin.add_parser("create-user", help="create a user and print a new API key")
    create_user.add_argument("--email", required=True)
    create_user.add_argument("--name")
    create_user.set_defaults(func=cmd_admin_create_user)
    accounts = commands.add_parser("accounts", help="Telegram accounts").add_subparsers(
        dest="accounts_command", required=True
    )
    account_login = accounts.add_parser(
        "login", help="log a Telegram account in (phone, code, 2FA password), interactively"
    )
    account_login.add_argument("--api", help="the API's URL (default: this machine's API)")
    account_login.add_argument("--key", help="an API key (default: $DRIPLINE_API_KEY)")
    account_login.add_argument("--name", help="the account's display name (default: the phone)")
    account_login.add_argument(
        "--account", metavar="ID", help="log this account (auth_lost) in again in place"
    )
    account_login.add_argument(
        "--proxy",
        metavar="URL",
        help="the account's proxy: socks5://user:password@host:port, http://host:port or an "
        "MTProxy link, tg://proxy?server=HOST&port=PORT&secret=SECRET",
    )
    account_login.add_argument(
        "--device",
        metavar="NAME=VALUE,…",
        help="the account's device: device_model=…,system_version=…,app_version=…"
        "[,lang_code=…,system_lang_code=…] (default: one picked for the account)",
    )
    account_login.set_defaults(func=cmd_accounts_login)
    fake = commands.add_parser(
        "fake-telegram",
        help="run a local fake Telegram (MTProto) server to try logins and campaigns on",
    )
    fake.add_argument("--port", type=int, default=0, help="TCP port (default: a free one)")
    fake.add_argument(
        "--rsa-key-out",
        type=Path,
        metavar="FILE",
        help="where to write its RSA public key (default: the state directory)",
    )
    fake.add_argument(
        "--accounts",
        type=int,
        default=0,
        metavar="N",
        help="also make N logged-in accounts (for bench/accounts.py)",
    )
    fake.add_argument(
        "--sessions-out",
        type=Path,
        metavar="FILE",
        help="write the N accounts' 'user_id session' lines there",
    )
    fake.add_argument("--quiet", action="store_true", help="do not print each message received")
    fake.set_defaults(func=cmd_fake_telegram)
    asyncapi = commands.add_parser("asyncapi", help="print the AsyncAPI document of the topics")
    asyncapi.add_argument("--output", help="write to this file instead")
    asyncapi.set_defaults(func=cmd_asyncapi)
    return parser


def main(argv: list[str] | None = None) -> None:
    args = build_parser().parse_args(argv)
    args.func(args)
