"""Row-set comparison of two relations in DuckDB, for `--check`.

Rows are compared as multisets over every column of the expected relation (column order does
not matter); doubles are rounded to 9 decimals, so only real differences count.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import duckdb

FLOAT_DIGITS = 9
SAMPLE_ROWS = 5


@dataclass
class TableDiff:
    name: str
    expected_rows: int
    actual_rows: int
    problems: list[str] = field(default_factory=list)
    missing: list[tuple] = field(default_factory=list)  # in expected, not in actual
    unexpected: list[tuple] = field(default_factory=list)  # in actual, not in expected
    missing_count: int = 0
    unexpected_count: int = 0
    columns: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems and not self.missing_count and not self.unexpected_count

    def describe(self) -> str:
        if self.ok:
            return f"{self.name}: identical ({self.expected_rows} rows)"
        lines = [f"{self.name}: DIFFERENT (expected {self.expected_rows} rows, got "
                 f"{self.actual_rows})"]  # fmt: skip
        lines += [f"  {problem}" for problem in self.problems]
        if self.missing_count or self.unexpected_count:
            lines.append(f"  columns: {', '.join(self.columns)}")
        for label, count, rows in (
            ("only in expected", self.missing_count, self.missing),
            ("only in actual", self.unexpected_count, self.unexpected),
        ):
            if count:
                lines.append(f"  {count} row(s) {label}, e.g.:")
                lines.extend(f"    {row}" for row in rows)
        return "\n".join(lines)


def _columns(con: duckdb.DuckDBPyConnection, relation: str) -> dict[str, str]:
    return {name: kind for name, kind, *_ in con.execute(f"describe {relation}").fetchall()}


def compare_relations(
    con: duckdb.DuckDBPyConnection, name: str, expected: str, actual: str
) -> TableDiff:
    """Compare `actual` with `expected` (table or view names visible to `con`)."""
    wanted = _columns(con, expected)
    got = _columns(con, actual)
    count = "select count(*) from {}"
    diff = TableDiff(
        name,
        con.execute(count.format(expected)).fetchone()[0],
        con.execute(count.format(actual)).fetchone()[0],
    )
    missing_columns = sorted(set(wanted) - set(got))
    if missing_columns:
        diff.problems.append(f"columns missing from the actual rows: {missing_columns}")
        return diff
    diff.columns = list(wanted)
    select = ", ".join(
        f"round({_quote(c)}, {FLOAT_DIGITS}) as {_quote(c)}"
        if kind in ("DOUBLE", "FLOAT", "REAL")
        else _quote(c)
        for c, kind in wanted.items()
    )
    for left, right, target in ((expected, actual, "missing"), (actual, expected, "unexpected")):
        query = f"select {select} from {left} except all select {select} from {right}"
        rows_count = con.execute(f"select count(*) from ({query})").fetchone()[0]
        rows = con.execute(f"{query} order by all limit {SAMPLE_ROWS}").fetchall()
        setattr(diff, f"{target}_count", rows_count)
        setattr(diff, target, rows)
    return diff


def _quote(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'
