"""A private PostgreSQL server on loopback for the multi-worker tests (own data directory, own port)."""

from __future__ import annotations

import glob
import os
import shutil
import socket
import subprocess
from pathlib import Path


def server_binaries() -> Path | None:
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/pg_ctl"))
    return Path(found[-1]).parent if found else None


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _as_server_user(cmd: list[str]) -> list[str]:
    # initdb and postgres refuse to run as root; Debian's package creates the 'postgres' user.
    if os.geteuid() == 0:
        return ["runuser", "-u", "postgres", "--", *cmd]
    return cmd


def start(root: Path) -> tuple[str, callable]:
    """Start a throwaway server under `root`; returns (SQLAlchemy URL, stop function)."""
    bin_dir = server_binaries()
    if bin_dir is None:
        raise FileNotFoundError("PostgreSQL server binaries (/usr/lib/postgresql/*/bin) are not installed")
    data, sockets = root / "data", root / "sockets"
    data.mkdir(parents=True)
    sockets.mkdir()
    if os.geteuid() == 0:
        shutil.chown(root, "postgres")
        for p in (data, sockets):
            shutil.chown(p, "postgres")
    subprocess.run(_as_server_user([str(bin_dir / "initdb"), "-D", str(data), "-A", "trust", "-U", "postgres"]),
                   check=True, capture_output=True)
    port = _free_port()
    options = f"-p {port} -k {sockets} -c listen_addresses=127.0.0.1 -c max_connections=100 -c fsync=off"
    subprocess.run(_as_server_user([str(bin_dir / "pg_ctl"), "-D", str(data), "-o", options, "-l",
                                    str(root / "server.log"), "-w", "start"]), check=True, capture_output=True)

    def stop() -> None:
        subprocess.run(_as_server_user([str(bin_dir / "pg_ctl"), "-D", str(data), "-m", "immediate", "stop"]),
                       capture_output=True)

    return f"postgresql+psycopg2://postgres@127.0.0.1:{port}/postgres", stop
