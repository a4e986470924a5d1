"""`BIS_WAREHOUSE_URL`: which engine holds the warehouse, and where (docs/architecture.md §16).

duckdb:///absolute/path/warehouse.duckdb     (or duckdb:relative/path.duckdb)
postgresql://user:password@host:port/dbname  (postgres:// is accepted too)
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from urllib.parse import unquote, urlsplit

ENGINES = ("duckdb", "postgresql")


class WarehouseUrlError(ValueError):
    """BIS_WAREHOUSE_URL is not a URL this system can open."""


@dataclass(frozen=True)
class WarehouseUrl:
    engine: str  # duckdb | postgresql
    path: Path | None = None  # duckdb: the database file
    host: str = ""
    port: int = 5432
    user: str = ""
    password: str = ""
    database: str = ""

    @property
    def is_duckdb(self) -> bool:
        return self.engine == "duckdb"

    @property
    def is_postgres(self) -> bool:
        return self.engine == "postgresql"

    def conninfo(self) -> dict[str, str | int]:
        """psycopg connection keywords (PostgreSQL only)."""
        return {
            "host": self.host,
            "port": self.port,
            "user": self.user,
            "password": self.password,
            "dbname": self.database,
        }

    def display(self) -> str:
        """The URL with any password hidden: safe to print and log."""
        if self.is_duckdb:
            return f"duckdb://{self.path}"
        auth = f"{self.user}:***@" if self.password else (f"{self.user}@" if self.user else "")
        return f"postgresql://{auth}{self.host}:{self.port}/{self.database}"

    def __repr__(self) -> str:
        return f"WarehouseUrl({self.display()!r})"

    __str__ = display


def duckdb_url(path: Path) -> WarehouseUrl:
    return WarehouseUrl(engine="duckdb", path=path.resolve())


def parse_warehouse_url(text: str, *, base_dir: Path | None = None) -> WarehouseUrl:
    """Parse `text`; a relative DuckDB path is taken from `base_dir` (default: the cwd)."""
    raw = text.strip()
    scheme, sep, rest = raw.partition(":")
    if not sep or scheme.lower() not in ("duckdb", "postgresql", "postgres"):
        raise WarehouseUrlError(
            f"BIS_WAREHOUSE_URL={_hidden(raw)!r}: expected duckdb:///path/to/file.duckdb or"
            " postgresql://user:password@host:port/dbname"
        )
    if scheme.lower() == "duckdb":
        path_text = rest[2:] if rest.startswith("//") else rest
        if not path_text or path_text.endswith("/"):
            raise WarehouseUrlError(
                f"BIS_WAREHOUSE_URL={raw!r}: names no database file (duckdb:///path/file.duckdb)"
            )
        path = Path(unquote(path_text)).expanduser()
        if not path.is_absolute():
            path = (base_dir or Path.cwd()) / path
        return WarehouseUrl(engine="duckdb", path=path.resolve())
    parts = urlsplit(raw)
    try:
        port = parts.port or 5432
    except ValueError as exc:
        raise WarehouseUrlError(f"BIS_WAREHOUSE_URL={_hidden(raw)!r}: bad port ({exc})") from None
    database = unquote(parts.path.lstrip("/"))
    if not parts.hostname or not database or "/" in database:
        raise WarehouseUrlError(
            f"BIS_WAREHOUSE_URL={_hidden(raw)!r}: needs a host and a database name"
            " (postgresql://user:password@host:port/dbname)"
        )
    return WarehouseUrl(
        engine="postgresql",
        host=parts.hostname,
        port=port,
        user=unquote(parts.username or ""),
        password=unquote(parts.password or ""),
        database=database,
    )


def _hidden(raw: str) -> str:
    """`raw` with the password of a user:password@ part replaced, for error messages."""
    head, at, tail = raw.rpartition("@")
    if not at or "://" not in head:
        return raw
    scheme, _, auth = head.partition("://")
    user = auth.split(":", 1)[0]
    return f"{scheme}://{user}:***@{tail}" if ":" in auth else raw
