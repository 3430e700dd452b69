"""Which version of a key file a cached copy came from: both key stores (data keys, pseudonym
keyring) re-read their file only when another process has replaced it."""

from __future__ import annotations

import os
from pathlib import Path

FileIdentity = tuple[int, int, int, int]


def stat_identity(st: os.stat_result) -> FileIdentity:
    # ctime and size as well as the inode: a freed inode number can be reused by the next write.
    return (st.st_dev, st.st_ino, st.st_ctime_ns, st.st_size)


def file_identity(path: Path) -> FileIdentity | None:
    try:
        return stat_identity(os.stat(path))
    except FileNotFoundError:
        return None
