"""The PostgreSQL engine: a psycopg 3 connection that takes the pipeline's SQL as written.

The pipeline's queries have one source, written in DuckDB's dialect (the embedded default);
on PostgreSQL each is transpiled once by sqlglot (cached), `?`/`$name` parameters become
psycopg's `%s`/`%(name)s`, and the few DuckDB functions sqlglot leaves alone exist on the
server as small SQL functions (compat.sql). Values come back as DuckDB returns them: JSON as
text, numeric as float, timestamps as aware datetimes in UTC (docs/architecture.md §16).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from functools import lru_cache
from importlib import resources
from typing import Any

import psycopg
import sqlglot
from psycopg.types.json import set_json_loads
from psycopg.types.numeric import FloatLoader
from psycopg.types.string import StrDumper
from sqlglot import exp
from sqlglot.errors import ErrorLevel

from pipelines.lib.engine.url import WarehouseUrl

# Statements sqlglot need not (or cannot) rewrite.
_PASSTHROUGH = re.compile(r"^\s*(begin|commit|rollback)\s*$", re.IGNORECASE)
# psycopg reads `%` as the start of a placeholder when parameters are passed: then every
# other `%` (a LIKE pattern, the modulo operator) is doubled.
_DML = re.compile(r"^\s*(insert|update|delete)\b", re.IGNORECASE)
_PLACEHOLDER = re.compile(r"%s\b|%\([A-Za-z_][A-Za-z_0-9]*\)s")
_LONE_PERCENT = re.compile(r"%(?!s\b|\([A-Za-z_][A-Za-z_0-9]*\)s)")


class PostgresError(RuntimeError):
    """The server refused a statement; the message names the statement's first line."""


class PostgresUnreachableError(PostgresError):
    """The server could not be reached or refused the login."""


class PostgresDataError(PostgresError, ValueError):
    """The server refused a value (bad data or a constraint), not the statement's form."""


@lru_cache(maxsize=2048)
def to_postgres(sql: str) -> tuple[str, ...]:
    """`sql` (DuckDB dialect, `?`/`$name` parameters) as PostgreSQL statements with psycopg
    parameters (one DuckDB statement may become two)."""
    if _PASSTHROUGH.match(sql):
        return (sql,)
    statements: list[str] = []
    for tree in sqlglot.parse(sql, read="duckdb"):
        if tree is None:
            continue
        for statement in _without_create_or_replace(tree):
            statement = statement.transform(_group_by_all).transform(_strftime)
            statements.append(
                statement.sql(dialect="postgres", unsupported_level=ErrorLevel.IGNORE)
            )
    return tuple(statements)


def _with_params(statement: str) -> bool:
    return bool(_PLACEHOLDER.search(statement))


@lru_cache(maxsize=2048)
def _percent_escaped(statement: str) -> str:
    """The statement as psycopg reads it when parameters are passed: lone `%` doubled."""
    return _LONE_PERCENT.sub("%%", statement)


# strftime directives → PostgreSQL to_char patterns; every other character is quoted text.
_TO_CHAR = {"Y": "YYYY", "m": "MM", "d": "DD", "H": "HH24", "M": "MI", "S": "SS", "f": "US"}


def _strftime(node: exp.Expression) -> exp.Expression:
    """`strftime(ts, '%Y-%m-%dT%H:%M:%SZ')` → `to_char(ts, 'YYYY-MM-DD"T"HH24:MI:SS"Z"')`:
    letters outside a directive are literal in strftime but patterns (`TH`) in to_char."""
    if not isinstance(node, exp.TimeToStr):
        return node
    fmt = node.args.get("format")
    if not isinstance(fmt, exp.Literal) or not fmt.is_string:
        return node
    parts, text, i = [], fmt.this, 0
    while i < len(text):
        if text[i] == "%" and i + 1 < len(text) and text[i + 1] in _TO_CHAR:
            parts.append(_TO_CHAR[text[i + 1]])
            i += 2
        else:
            parts.append('"' + text[i] + '"' if text[i].isalpha() else text[i])
            i += 1
    pattern = exp.Literal.string("".join(parts))
    return exp.Anonymous(this="to_char", expressions=[node.this, pattern])


def _without_create_or_replace(tree: exp.Expression) -> list[exp.Expression]:
    """`create or replace [temp] table t as …` → `drop table if exists t; create …`."""
    if not (isinstance(tree, exp.Create) and tree.args.get("replace")):
        return [tree]
    kind = (tree.args.get("kind") or "").upper()
    if kind not in ("TABLE", "VIEW"):
        return [tree]
    target = tree.this.this if isinstance(tree.this, exp.Schema) else tree.this
    drop = exp.Drop(tables=[target.copy()], kind=kind, exists=True)
    create = tree.copy()
    create.set("replace", False)
    return [drop, create]


def _group_by_all(node: exp.Expression) -> exp.Expression:
    """`group by all` → the positions of the select list's non-aggregate columns."""
    if isinstance(node, exp.Select):
        group = node.args.get("group")
        if group is not None and group.args.get("all"):
            keys = [
                exp.Literal.number(index + 1)
                for index, column in enumerate(node.expressions)
                if not column.find(exp.AggFunc)
            ]
            node.set("group", exp.Group(expressions=keys) if keys else None)
    return node


class _TextDumper(StrDumper):
    """PostgreSQL text cannot hold U+0000: it is stored as the four characters `\\x00`, the
    escape the pipeline already uses for bytes that are not UTF-8 in kept raw records."""

    def dump(self, obj: str):
        return super().dump(obj.replace("\x00", "\\x00") if "\x00" in obj else obj)


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value


class PostgresConnection:
    """The subset of DuckDB's connection API the pipeline uses, on a PostgreSQL server.

    Autocommit, like DuckDB: `begin`/`commit`/`rollback` statements delimit transactions.
    """

    engine = "postgresql"

    def __init__(self, url: WarehouseUrl, *, read_only: bool = False, application: str = "bis"):
        self.url = url
        try:
            self._con = psycopg.connect(
                **url.conninfo(),
                autocommit=True,
                connect_timeout=10,
                application_name=application,
                options="-c timezone=UTC"
                + (" -c default_transaction_read_only=on" if read_only else ""),
            )
        except psycopg.Error as exc:
            detail = " ".join(str(exc).split())[:300]
            raise PostgresUnreachableError(
                f"cannot connect to the warehouse {url.display()}: {detail}"
            ) from None
        set_json_loads(_text, self._con)
        # Strings as `text`, not psycopg's default `unknown`: `unnest($ids)` of a list of
        # strings must have a type, as it has in DuckDB.
        self._con.adapters.register_dumper(str, _TextDumper)
        for name in ("numeric", "float4", "float8"):
            self._con.adapters.register_loader(name, FloatLoader)
        self._cursor = self._con.cursor()
        self._count: tuple | None = None

    # DuckDB's API: execute returns the connection, whose fetch* read the last result.
    def execute(self, sql: str, params: Sequence[Any] | dict[str, Any] | None = None):
        self._count: tuple | None = None
        try:
            for statement in to_postgres(sql):
                if params and _with_params(statement):
                    self._cursor.execute(_percent_escaped(statement), params)
                else:
                    self._cursor.execute(statement)
        except psycopg.Error as exc:
            raise _named(exc, sql) from exc
        if self._cursor.description is None and _DML.match(sql):
            self._count = (self._cursor.rowcount,)  # DuckDB answers DML with its row count
        return self

    def executemany(self, sql: str, rows: Iterable[Sequence[Any] | dict[str, Any]]):
        try:
            (statement,) = to_postgres(sql)
            self._cursor.executemany(_percent_escaped(statement), list(rows))
        except psycopg.Error as exc:
            raise _named(exc, sql) from exc
        return self

    def fetchall(self) -> list[tuple]:
        if self._cursor.description:
            return self._cursor.fetchall()
        return [self._count] if self._count else []

    def fetchone(self) -> tuple | None:
        if self._cursor.description:
            return self._cursor.fetchone()
        return self._count

    def fetchmany(self, size: int = 1) -> list[tuple]:
        """The next `size` rows of the last result (an export streams them in batches)."""
        return self._cursor.fetchmany(size) if self._cursor.description else []

    @property
    def description(self):
        return self._cursor.description

    @property
    def rowcount(self) -> int:
        return self._cursor.rowcount

    def copy_rows(self, table: str, columns: Sequence[str], rows: Iterable[Sequence[Any]]) -> int:
        """Bulk-load `rows` into `table` with COPY (the server's fast path); returns the count."""
        count = 0
        statement = f"copy {table} ({', '.join(columns)}) from stdin"
        try:
            with self._cursor.copy(statement) as copy:
                for row in rows:
                    copy.write_row(row)
                    count += 1
        except psycopg.Error as exc:
            raise _named(exc, statement) from exc
        return count

    def copy_file(self, table: str, columns: Sequence[str], csv_path: str) -> None:
        """COPY a CSV file (no header; unquoted empty = null) into `table`, streamed."""
        statement = f"copy {table} ({', '.join(columns)}) from stdin (format csv)"
        try:
            with self._cursor.copy(statement) as copy, open(csv_path, "rb") as source:
                while block := source.read(1 << 20):
                    copy.write(block)
        except psycopg.Error as exc:
            raise _named(exc, statement) from exc

    @property
    def raw(self) -> psycopg.Connection:
        return self._con

    def close(self) -> None:
        self._con.close()

    def __enter__(self) -> PostgresConnection:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _named(exc: psycopg.Error, sql: str) -> PostgresError:
    first = next((line.strip() for line in sql.splitlines() if line.strip()), "")
    detail = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    kind = (
        PostgresDataError
        if isinstance(exc, psycopg.DataError | psycopg.IntegrityError)
        else PostgresError
    )
    error = kind(f"PostgreSQL: {detail} (in `{first[:100]}`)")
    error.sqlstate = getattr(exc, "sqlstate", None)  # type: ignore[attr-defined]
    return error


def compat_sql() -> str:
    """The DuckDB functions the pipeline's SQL uses that PostgreSQL lacks (idempotent)."""
    return resources.files("pipelines.lib.engine").joinpath("compat.sql").read_text()
