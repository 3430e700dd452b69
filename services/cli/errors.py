"""Every CLI failure is one line on stderr (what failed, what to check) and an exit code, never a
traceback: the officer who reads it did not write the code. ``S115HUB_DEBUG=1`` shows the
traceback for the developer who did."""

from __future__ import annotations

import logging
import os
import sys
from pathlib import Path
from typing import Any, NoReturn

from services.core.config.settings import REPO_ROOT, Settings
from services.core.config.state_dir import ENV_FILE_NAME, cli_env_file, load_env_into
from services.core.errors import HubError
from services.core.kafka.errors import BrokerUnavailable

#: Commands that *are* the hub: they write the env file and must not read a stale one.
HUB_COMMANDS = ("up", "broker")
DEMO_STATE = REPO_ROOT / ".s115hub" / "demo"


def _env_file_option(args: list[str]) -> str | None:
    for i, arg in enumerate(args):
        if arg == "--env-file" and i + 1 < len(args):
            return args[i + 1]
        if arg.startswith("--env-file="):
            return arg.split("=", 1)[1]
        if not arg.startswith("-"):
            return None  # options after the command belong to the command
    return None


def _command(args: list[str]) -> str | None:
    skip = False
    for arg in args:
        if skip:
            skip = False
            continue
        if arg == "--env-file":
            skip = True
            continue
        if not arg.startswith("-"):
            return arg
    return None


def broker_hint(env_file: Path | None) -> str:
    servers = os.environ.get("S115HUB_KAFKA_BOOTSTRAP_SERVERS") or os.environ.get(
        "KAFKA_BOOTSTRAP_SERVERS") or Settings.model_fields["kafka_bootstrap_servers"].default
    source = f"from {env_file}" if env_file else "no env file found"
    return (f"cannot reach the Kafka broker at {servers} ({source}): is the hub running "
            f"(`s115hub up`)? Check S115HUB_ENV_FILE / --env-file (up writes <state dir>/"
            f"{ENV_FILE_NAME}) or KAFKA_BOOTSTRAP_SERVERS")


def one_line(exc: BaseException, env_file: Path | None) -> str:
    """The message for ``exc``: ours as they are, the broker's as where to look."""
    from pydantic import ValidationError

    from services.core.kafka.errors import is_client_error

    name = type(exc).__name__
    if isinstance(exc, BrokerUnavailable):
        return f"{exc} ({f'settings from {env_file}' if env_file else 'no env file found'})"
    if isinstance(exc, HubError):
        return str(exc)
    if is_client_error(exc) or "Unable to bootstrap" in str(exc):
        return broker_hint(env_file) + f" [{name}]"
    if isinstance(exc, ValidationError):
        first = exc.errors(include_url=False)[0]
        where = ".".join(str(p) for p in first["loc"])
        return f"invalid {exc.title} {where or 'value'}: {first['msg']}"
    if isinstance(exc, OSError):
        target = f" {exc.filename}" if exc.filename else ""
        return f"{exc.strerror or exc}:{target}"
    text = " ".join(str(exc).split())
    return f"unexpected {name}: {text} (S115HUB_DEBUG=1 shows the traceback)"


def run_cli(app: Any, args: list[str] | None = None) -> None:
    args = list(sys.argv[1:] if args is None else args)
    env_file: Path | None = None
    if os.environ.get("S115HUB_DEBUG") != "1":
        # The Kafka clients log each failed connection attempt to stderr; the officer gets the
        # one line below instead.
        for name in ("aiokafka", "kafka"):
            logging.getLogger(name).setLevel(logging.CRITICAL)
    try:
        if _command(args) not in HUB_COMMANDS:
            env_file = cli_env_file(_env_file_option(args), os.environ,
                                    Settings.model_fields["state_dir"].default, DEMO_STATE)
            if env_file is not None:
                load_env_into(env_file, os.environ)
        # Not standalone: click would print usage errors as a boxed, multi-line panel.
        code = app(args=args, prog_name="s115hub", standalone_mode=False)
        raise SystemExit(code if isinstance(code, int) else 0)
    except SystemExit:
        raise
    except BaseException as exc:  # the one place every failure becomes a line
        if os.environ.get("S115HUB_DEBUG") == "1":
            raise
        _fail(exc, env_file)


def _fail(exc: BaseException, env_file: Path | None) -> NoReturn:
    # typer vendors click, so its exceptions are recognised by shape, not by class.
    if type(exc).__name__ == "Abort":
        print("s115hub: aborted", file=sys.stderr)
        raise SystemExit(1) from None
    if isinstance(exc, KeyboardInterrupt):
        print("s115hub: interrupted", file=sys.stderr)
        raise SystemExit(130) from None
    code = getattr(exc, "exit_code", None)
    if hasattr(exc, "format_message") and isinstance(code, int):
        ctx = getattr(exc, "ctx", None)
        where = ctx.command_path if ctx is not None else "s115hub"
        usage = any(c.__name__ == "UsageError" for c in type(exc).__mro__)
        hint = " (--help shows the usage)" if usage else ""
        print(f"s115hub: error: {where}: {' '.join(exc.format_message().split())}{hint}",
              file=sys.stderr)
        raise SystemExit(code) from None
    # Exception groups (asyncio TaskGroup) carry the real cause inside.
    while isinstance(exc, BaseExceptionGroup) and exc.exceptions:
        exc = exc.exceptions[0]
    print(f"s115hub: error: {one_line(exc, env_file)}", file=sys.stderr)
    # Clients abandoned by the error would log "Unclosed ..." at exit: the line above is
    # the whole story.
    logging.getLogger("asyncio").setLevel(logging.CRITICAL)
    raise SystemExit(1) from None
