"""A throwaway PostgreSQL server for tests: Debian's `postgresql` package, a temporary directory.

    python tests/dbt/pg_throwaway.py install          # apt-get install postgresql, when missing
    python tests/dbt/pg_throwaway.py run -- CMD ...   # CMD against a fresh server (BIS_PG_* set)

`throwaway_server()` runs initdb in a fresh temporary directory as an unprivileged OS user
(PostgreSQL refuses to run as root: as root it uses `postgres`, else creates `bis-pg`), starts the
server on 127.0.0.1 on a free port with its unix socket inside that directory and password
authentication, creates the database, and on exit (also on error or SIGTERM) stops the server
and deletes the directory. Durability is off: the data is thrown away anyway.
"""

from __future__ import annotations

import contextlib
import os
import pwd
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import psycopg2

DEBIAN_BINDIRS = "/usr/lib/postgresql"
SERVICE_USER = "bis-pg"  # created only when running as root and Debian's `postgres` is absent


@dataclass(frozen=True)
class Server:
    host: str
    port: int
    user: str
    password: str
    database: str
    directory: Path

    def url(self, database: str | None = None) -> str:
        """The server as a `BIS_WAREHOUSE_URL` (docs/architecture.md §16)."""
        return (
            f"postgresql://{self.user}:{self.password}@{self.host}:{self.port}"
            f"/{database or self.database}"
        )

    def env(self) -> dict[str, str]:
        """`BIS_WAREHOUSE_URL`, and the variables the `postgres` output of
        dbt_project/profiles.yml reads."""
        return {
            "BIS_WAREHOUSE_URL": self.url(),
            "BIS_PG_HOST": self.host,
            "BIS_PG_PORT": str(self.port),
            "BIS_PG_USER": self.user,
            "BIS_PG_PASSWORD": self.password,
            "BIS_PG_DATABASE": self.database,
        }

    def admin(self, *statements: str) -> list[tuple]:
        """Run `statements` on the maintenance database, outside a transaction (create or
        drop a database); returns the last one's rows."""
        con = self.connect("postgres")
        try:
            con.autocommit = True
            with con.cursor() as cursor:
                for statement in statements:
                    cursor.execute(statement)
                return cursor.fetchall() if cursor.description else []
        finally:
            con.close()

    def connect(self, database: str | None = None):
        return psycopg2.connect(
            host=self.host,
            port=self.port,
            user=self.user,
            password=self.password,
            dbname=database or self.database,
            connect_timeout=10,
        )


def find_bindir() -> Path | None:
    """The directory of initdb/pg_ctl/postgres: Debian's newest version, else the PATH."""
    candidates = sorted(
        Path(DEBIAN_BINDIRS).glob("*/bin"),
        key=lambda path: int(path.parent.name) if path.parent.name.isdigit() else 0,
        reverse=True,
    )
    on_path = shutil.which("initdb")
    if on_path:
        candidates.append(Path(on_path).resolve().parent)
    for bindir in candidates:
        if all((bindir / tool).is_file() for tool in ("initdb", "pg_ctl", "postgres")):
            return bindir
    return None


def install() -> Path:
    """Install Debian's `postgresql` package unless the server binaries are already there."""
    bindir = find_bindir()
    if bindir is not None:
        return bindir
    if not shutil.which("apt-get"):
        raise RuntimeError("PostgreSQL is not installed and apt-get is not available")
    sudo = [] if os.geteuid() == 0 else ["sudo", "-n"]
    if sudo and not shutil.which("sudo"):
        raise RuntimeError("PostgreSQL is not installed: run as root (apt-get install postgresql)")
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    print("pg_throwaway: installing Debian's postgresql package", file=sys.stderr)
    subprocess.run([*sudo, "apt-get", "update", "-qq"], env=env, check=True)
    subprocess.run(
        [*sudo, "apt-get", "install", "-y", "-qq", "--no-install-recommends", "postgresql"],
        env=env,
        check=True,
    )
    bindir = find_bindir()
    if bindir is None:
        raise RuntimeError(f"postgresql installed, but no initdb under {DEBIAN_BINDIRS}/*/bin")
    return bindir


def _service_user() -> pwd.struct_passwd | None:
    """The OS user the server runs as when we are root (None: run as ourselves)."""
    if os.geteuid() != 0:
        return None
    for name in ("postgres", SERVICE_USER):
        with contextlib.suppress(KeyError):
            return pwd.getpwnam(name)
    subprocess.run(
        ["useradd", "--system", "--user-group", "--no-create-home", "--home-dir", "/nonexistent",
         "--shell", "/usr/sbin/nologin", SERVICE_USER],
        check=True,
    )  # fmt: skip
    return pwd.getpwnam(SERVICE_USER)


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@contextlib.contextmanager
def _terminate_cleanly() -> Iterator[None]:
    """Turn SIGTERM into KeyboardInterrupt meanwhile (pytest stops and tears its fixtures
    down, as on Ctrl-C), so the cleanup below still runs."""
    if sys.platform == "win32" or signal.getsignal(signal.SIGTERM) not in (signal.SIG_DFL, None):
        yield
        return

    def handler(signum, frame):
        raise KeyboardInterrupt(f"signal {signum}")

    try:
        previous = signal.signal(signal.SIGTERM, handler)
    except ValueError:  # not the main thread
        yield
        return
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


@contextlib.contextmanager
def throwaway_server(
    bindir: Path | None = None, database: str = "bis", timezone: str = "UTC"
) -> Iterator[Server]:
    bindir = bindir or find_bindir()
    if bindir is None:
        raise RuntimeError("PostgreSQL server binaries not found (python pg_throwaway.py install)")
    with _terminate_cleanly():
        user = _service_user()
        directory = Path(tempfile.mkdtemp(prefix="bis-pg-"))
        data = directory / "data"
        started = False

        def run(*command: str | Path, check: bool = True) -> subprocess.CompletedProcess:
            as_user = ["runuser", "-u", user.pw_name, "--"] if user else []
            return subprocess.run(
                [*as_user, *map(str, command)],
                cwd=directory,
                capture_output=True,
                text=True,
                check=check,
            )

        try:
            os.chmod(directory, 0o700)
            if user:
                os.chown(directory, user.pw_uid, user.pw_gid)
            password = secrets.token_urlsafe(24)
            pwfile = directory / "pwfile"
            pwfile.write_text(password + "\n")
            if user:
                os.chown(pwfile, user.pw_uid, user.pw_gid)
            superuser = "bis"
            run(
                bindir / "initdb", "-D", data, "-U", superuser, f"--pwfile={pwfile}",
                "--auth=scram-sha-256", "--encoding=UTF8", "--locale=C", "--no-sync",
                "--no-instructions",
            )  # fmt: skip
            pwfile.unlink()
            for attempt in range(3):  # a free port can be taken before the server binds it
                port = _free_port()
                options = (
                    f"-c listen_addresses=127.0.0.1 -p {port} -k {directory}"
                    f" -c timezone={timezone} -c fsync=off -c synchronous_commit=off"
                    " -c full_page_writes=off -c max_connections=20"
                )
                started_run = run(
                    bindir / "pg_ctl", "-D", data, "-l", directory / "server.log", "-o", options,
                    "-w", "-t", "60", "start", check=False,
                )  # fmt: skip
                started = True  # whatever pg_ctl says, stop below (it may have half-started)
                if started_run.returncode == 0:
                    break
                if attempt == 2:
                    log = (directory / "server.log").read_text(errors="replace")[-3000:]
                    raise RuntimeError(f"pg_ctl start failed: {started_run.stderr}\n{log}")
            server = Server("127.0.0.1", port, superuser, password, database, directory)
            deadline = time.monotonic() + 30
            while True:
                try:
                    server.admin(f'create database "{database}"')
                    break
                except psycopg2.OperationalError:
                    if time.monotonic() > deadline:
                        raise
                    time.sleep(0.2)
            yield server
        finally:
            if started:
                stopped = run(bindir / "pg_ctl", "-D", data, "-m", "fast", "-w", "-t", "30",
                              "stop", check=False)  # fmt: skip
                if stopped.returncode != 0 and (data / "postmaster.pid").exists():
                    run(bindir / "pg_ctl", "-D", data, "-m", "immediate", "stop", check=False)
            shutil.rmtree(directory, ignore_errors=True)


def main(argv: list[str]) -> int:
    if argv[:1] == ["install"]:
        print(install())
        return 0
    if argv[:1] == ["run"]:
        command = argv[2:] if argv[1:2] == ["--"] else argv[1:]
        if not command:
            raise SystemExit("usage: pg_throwaway.py run -- CMD [ARGS...]")
        with throwaway_server() as server:
            return subprocess.run(command, env={**os.environ, **server.env()}).returncode
    raise SystemExit(__doc__)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
