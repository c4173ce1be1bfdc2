"""A throwaway PostgreSQL server for people who have PostgreSQL installed but not running.

Why: docs/reference.md, Deployment wants ``make demo`` to work on a laptop with only the PostgreSQL
binaries
installed. We ``initdb`` into a temporary directory, start it with ``pg_ctl`` listening
only on a unix socket inside that directory (so it can neither clash with nor be reached
by anything else), and stop and delete it on exit. ``initdb`` refuses to run as root, so
root users must point us at a running server instead.
"""

from __future__ import annotations

import glob
import os
import re
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from enrolldb.dsn import SetupError

INSTALL_HELP = (
    "install the PostgreSQL server (e.g. `apt-get install postgresql` or "
    "`brew install postgresql`) or point enrolldb at a server with DATABASE_URL / PG*"
)


def _version_of(bindir: Path) -> tuple[int, ...]:
    try:
        out = subprocess.run(
            [str(bindir / "pg_ctl"), "--version"],
            capture_output=True,
            text=True,
            check=True,
            timeout=30,
        ).stdout
    except (OSError, subprocess.SubprocessError):
        return ()
    match = re.search(r"(\d+(?:\.\d+)*)", out)
    return tuple(int(x) for x in match.group(1).split(".")) if match else ()


def find_bindir() -> Path | None:
    """The directory with ``initdb`` and ``pg_ctl`` of the highest installed version."""
    candidates: list[Path] = []
    pg_config = shutil.which("pg_config")
    if pg_config:
        try:
            out = subprocess.run(
                [pg_config, "--bindir"], capture_output=True, text=True, check=True, timeout=30
            ).stdout.strip()
            candidates.append(Path(out))
        except (OSError, subprocess.SubprocessError):
            pass
    candidates += [Path(p) for p in glob.glob("/usr/lib/postgresql/*/bin")]
    candidates += [Path(p) for p in glob.glob("/usr/local/opt/postgresql*/bin")]
    candidates += [Path(p) for p in glob.glob("/opt/homebrew/opt/postgresql*/bin")]
    on_path = shutil.which("pg_ctl")
    if on_path:
        candidates.append(Path(on_path).resolve().parent)
    usable = {
        c.resolve()
        for c in candidates
        if (c / "pg_ctl").is_file()
        and (c / "initdb").is_file()
        and os.access(c / "initdb", os.X_OK)
    }
    if not usable:
        return None
    return max(usable, key=lambda c: (_version_of(c), str(c)))


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def _run(cmd: list[str]) -> None:
    result = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    if result.returncode != 0:
        detail = " ".join((result.stderr or result.stdout).split())[:300]
        raise SetupError(f"{Path(cmd[0]).name} failed: {detail}")


@contextmanager
def throwaway_server() -> Iterator[str]:
    """Start a private server; yield a conninfo for its ``postgres`` superuser.

    fsync is off: the data is thrown away anyway and it makes start-up fast.
    """
    if hasattr(os, "geteuid") and os.geteuid() == 0:
        raise SetupError(
            "cannot start a throwaway server as root (initdb refuses); " + INSTALL_HELP
        )
    bindir = find_bindir()
    if bindir is None:
        raise SetupError(
            "no PostgreSQL server found and no initdb/pg_ctl installed: " + INSTALL_HELP
        )
    tmp = Path(tempfile.mkdtemp(prefix="enrolldb-pg-"))
    datadir = tmp / "data"
    port = _free_port()
    started = False
    try:
        _run(
            [
                str(bindir / "initdb"),
                "-D",
                str(datadir),
                "-U",
                "postgres",
                "-A",
                "trust",
                "-E",
                "UTF8",
                "--no-sync",
            ]
        )
        opts = f"-p {port} -k {tmp} -c listen_addresses='' -c fsync=off"
        opts += " -c synchronous_commit=off -c full_page_writes=off"
        _run(
            [
                str(bindir / "pg_ctl"),
                "-D",
                str(datadir),
                "-l",
                str(tmp / "log"),
                "-w",
                "-o",
                opts,
                "start",
            ]
        )
        started = True
        yield f"host={tmp} port={port} user=postgres dbname=postgres"
    finally:
        if started:
            subprocess.run(
                [str(bindir / "pg_ctl"), "-D", str(datadir), "-m", "immediate", "-w", "stop"],
                capture_output=True,
                timeout=120,
                check=False,
            )
        shutil.rmtree(tmp, ignore_errors=True)
