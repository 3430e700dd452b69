"""The hub's state directory and the environment file that lets a second terminal find the hub.

A production state directory is created once (mode 0700, with a marker file) and never deleted:
it holds the master key, the audit key, partner and group credential hashes, data keys and the
pseudonym keyring, and losing any of them loses data. ``s115hub up --demo`` deletes and recreates
only a directory it created itself as a demo (its marker says so), so pointing the demo at a real
state directory by mistake is refused rather than wiping it.

The environment file (``<state>/s115hub.env``, mode 0600 because it may carry broker credentials)
is KEY=VALUE lines, the format of systemd's EnvironmentFile and of ``set -a; . file``. ``up``
writes it once the hub is ready; the CLI reads it at start (see :func:`cli_env_file`), so
commands in another terminal talk to the same broker, topics and state as the running hub.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Mapping
from pathlib import Path

from services.core.config.errors import ConfigError
from services.core.crypto.keys import write_private_file
from services.core.errors import HubError

ENV_FILE_NAME = "s115hub.env"
#: Marks a directory `up --demo` made and may therefore wipe.
DEMO_MARKER = ".s115hub-demo"
#: Marks a production state directory: from then on a missing master key is an error, never a
#: reason to make a new one (which would make every earlier record unreadable).
STATE_MARKER = ".s115hub-state"
#: Where the CLI looks when neither --env-file nor S115HUB_ENV_FILE says: the production default
#: state directory, then the demo's.
ENV_FILE_VAR = "S115HUB_ENV_FILE"


def prepare_production_state(state_dir: Path) -> bool:
    """Create the state directory (0700) with its marker if it does not exist; never delete or
    empty one. Returns True when it was created now."""
    if (state_dir / DEMO_MARKER).exists():
        raise HubError(f"{state_dir} is a demo state directory (its keys are throwaway); give "
                       "production its own --state-dir / S115HUB_STATE_DIR")
    created = not state_dir.exists()
    state_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    os.chmod(state_dir, 0o700)
    marker = state_dir / STATE_MARKER
    if not marker.exists():
        if not created and (state_dir / "datakeys").exists() \
                and not (state_dir / "master.key").exists():
            raise HubError(f"{state_dir} holds data keys but no master.key: restore master.key "
                           "from backup (a new one could not read any earlier record)")
        marker.write_text("s115hub production state directory: never delete it\n")
    elif not (state_dir / "master.key").exists() and not os.environ.get("S115HUB_MASTER_KEY"):
        raise HubError(f"{state_dir}/master.key is missing from an existing state directory: "
                       "restore it from backup (a new one could not read any earlier record)")
    return created


def prepare_demo_state(state_dir: Path, *, wipe: bool = True) -> None:
    """Start the demo on a fresh directory: wipe it only if the demo made it, and never when
    it holds a local Apache Kafka's data (a persistent demo, `up --demo --broker kafka`)."""
    if state_dir.exists():
        if (state_dir / "kafka").exists():
            if wipe:
                raise HubError(f"{state_dir} holds a local Apache Kafka's data (--broker "
                               "kafka); refusing to wipe it for an in-memory demo (choose "
                               "another --state-dir)")
        elif (state_dir / DEMO_MARKER).exists():
            if wipe:
                shutil.rmtree(state_dir)  # a demo generates fresh keys every time
        elif any(state_dir.iterdir()):
            raise HubError(f"{state_dir} exists and was not made by `up --demo`; refusing to "
                           "delete it (choose an empty or new --state-dir for the demo)")
    state_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    os.chmod(state_dir, 0o700)
    (state_dir / DEMO_MARKER).write_text("made by `s115hub up --demo`; deleted on its next start "
                                         "unless it holds Apache Kafka data\n")


def render_env(values: Mapping[str, str]) -> str:
    lines = ["# Written by `s115hub up`: how the CLI and a supervisor find this hub.",
             "# Mode 0600: it may carry broker credentials."]
    for key, value in sorted(values.items()):
        if "\n" in value:
            raise ConfigError(f"{key} contains a newline", field=key)
        lines.append(f"{key}={value}")
    return "\n".join(lines) + "\n"


def parse_env(text: str, *, source: str = "environment file") -> dict[str, str]:
    out: dict[str, str] = {}
    for n, raw in enumerate(text.splitlines(), start=1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        key, sep, value = line.removeprefix("export ").partition("=")
        if not sep or not key.strip():
            raise ConfigError("expected KEY=VALUE", file=source, line=n)
        value = value.strip()
        if len(value) >= 2 and value[0] == value[-1] and value[0] in "\"'":
            value = value[1:-1]
        out[key.strip()] = value
    return out


def write_env_file(path: Path, values: Mapping[str, str]) -> None:
    write_private_file(path, render_env(values).encode(), overwrite=True)


def cli_env_file(explicit: str | None, environ: Mapping[str, str], default_state: Path,
                 demo_state: Path) -> Path | None:
    """The environment file the CLI reads: --env-file, else $S115HUB_ENV_FILE, else the one in
    $S115HUB_STATE_DIR (or the default state directory), else the demo's. None if none exists;
    an explicitly named file that does not exist is an error."""
    named = explicit or environ.get(ENV_FILE_VAR)
    if named:
        path = Path(named)
        if not path.is_file():
            raise HubError(f"environment file {path} does not exist (from "
                           f"{'--env-file' if explicit else ENV_FILE_VAR}); `s115hub up` writes "
                           f"<state dir>/{ENV_FILE_NAME}")
        return path
    state = environ.get("S115HUB_STATE_DIR")
    candidates = [Path(state) / ENV_FILE_NAME] if state else [default_state / ENV_FILE_NAME,
                                                               demo_state / ENV_FILE_NAME]
    return next((c for c in candidates if c.is_file()), None)


def load_env_into(path: Path, environ: os._Environ[str] | dict[str, str]) -> list[str]:
    """Set what the file says, except what the environment already sets (the environment wins,
    as with every settings source). Returns the keys set."""
    try:
        values = parse_env(path.read_text(encoding="utf-8"), source=str(path))
    except OSError as exc:
        raise HubError(f"cannot read environment file {path}: {exc.strerror}") from None
    set_now = [k for k in values if k not in environ]
    for key in set_now:
        environ[key] = values[key]
    return set_now
