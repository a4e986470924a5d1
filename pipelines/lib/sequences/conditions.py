"""Sequence conditions: small SQL boolean expressions over the mart columns.

The rules are docs/architecture.md §6.

Growth people write them in YAML and the planner pastes them into a WHERE clause, so they are
parsed with sqlglot and checked against a whitelist instead of a blacklist: anything not listed
below is refused. Allowed:

- columns of `marts.dim_users` / `marts.user_progress`, unqualified (the planner owns the joins);
- literals: numbers, 'strings', TRUE/FALSE, NULL, INTERVAL '7' DAY, CAST(x AS type);
- comparisons (=, <>, !=, <, <=, >, >=, IS [NOT] DISTINCT FROM), AND / OR / NOT, parentheses,
  arithmetic (+ - * / // %), BETWEEN, IN (list), IS [NOT] NULL / TRUE / FALSE, [I]LIKE;
- the functions in ALLOWED_FUNCTIONS.

Refused on purpose: subqueries and SELECT (a condition reads one user's row), semicolons (one
expression, never a second statement), aggregate and window functions (they need a grouping
the planner does not have), and the wall clock (`now()`, `current_timestamp`): every time rule
must follow the pipeline clock `BIS_AS_OF`, which the marts already applied (events_last_7d,
is_inactive, ...), so a condition that read the wall clock would make runs unreproducible.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable

import sqlglot
from sqlglot import exp
from sqlglot.errors import ParseError, SqlglotError
from sqlglot.tokens import TokenType

DIALECT = "duckdb"

# Function class -> the name authors write. Small on purpose: each is scalar, deterministic and
# exists in DuckDB under this name.
ALLOWED_FUNCTIONS: dict[type[exp.Expression], str] = {
    exp.Abs: "abs",
    exp.Coalesce: "coalesce",
    exp.DateDiff: "date_diff",
    exp.Greatest: "greatest",
    exp.Least: "least",
    exp.Length: "length",
    exp.Lower: "lower",
    exp.Nullif: "nullif",
    exp.Round: "round",
    exp.Upper: "upper",
}

_ALLOWED_NODES: tuple[type[exp.Expression], ...] = (
    exp.Column,
    exp.Identifier,
    exp.Literal,
    exp.Boolean,
    exp.Null,
    exp.Paren,
    exp.And,
    exp.Or,
    exp.Not,
    exp.EQ,
    exp.NEQ,
    exp.GT,
    exp.GTE,
    exp.LT,
    exp.LTE,
    exp.NullSafeEQ,
    exp.NullSafeNEQ,
    exp.Is,
    exp.Between,
    exp.In,
    exp.Like,
    exp.ILike,
    exp.Add,
    exp.Sub,
    exp.Mul,
    exp.Div,
    exp.IntDiv,
    exp.Mod,
    exp.Neg,
    exp.Interval,
    exp.Cast,
    exp.DataType,
    exp.DataTypeParam,
    *ALLOWED_FUNCTIONS,
)

# A condition must yield a boolean: these at the top can only yield a number, text or interval.
_NON_BOOLEAN_ROOTS = (
    exp.Literal,
    exp.Null,
    exp.Interval,
    exp.Add,
    exp.Sub,
    exp.Mul,
    exp.Div,
    exp.IntDiv,
    exp.Mod,
    exp.Neg,
)


class ConditionError(ValueError):
    """A condition failed validation; `problems` lists every reason, one sentence each."""

    def __init__(self, expression: str, problems: list[str]) -> None:
        super().__init__(f"invalid condition {expression!r}: " + "; ".join(problems))
        self.expression = expression
        self.problems = problems


def condition_problems(expression: str, columns: Iterable[str] | None = None) -> list[str]:
    """Every reason `expression` is not an allowed condition; [] when it is.

    `columns` is the set of known column names; None skips the column check (the structure is
    still checked), for callers that have no dbt project at hand.
    """
    tree, problems = _parse(expression)
    if tree is None:
        return problems
    known = {name.lower() for name in columns} if columns is not None else None
    return _structure_problems(tree, known)


def condition_sql(expression: str, *, qualifier: str | None = None) -> str:
    """The condition re-rendered as DuckDB SQL, parenthesized so it embeds safely in a WHERE.

    Parenthesized because `a AND {condition}` with `x OR y` pasted in would change meaning.
    `qualifier` prefixes every column with a table alias (e.g. "u" -> `u.steps_completed`) for
    planners that join dim_users and user_progress, which share some column names.
    Raises ConditionError when the expression is not an allowed condition (columns unchecked).
    """
    tree, problems = _parse(expression)
    if tree is None:
        raise ConditionError(expression, problems)
    problems = _structure_problems(tree, None)
    if problems:
        raise ConditionError(expression, problems)
    if qualifier:
        for column in tree.find_all(exp.Column):
            column.set("table", exp.to_identifier(qualifier))
    return f"({tree.sql(dialect=DIALECT, comments=False)})"


def _parse(expression: str) -> tuple[exp.Expression | None, list[str]]:
    if not expression or not expression.strip():
        return None, ["the condition is empty"]
    try:
        # Tokens first: sqlglot's parser silently drops a trailing `;`, and a semicolon is how a
        # second statement would be smuggled into the planner's query.
        tokens = sqlglot.Dialect.get_or_raise(DIALECT).tokenize(expression)
    except SqlglotError:
        return None, ["cannot parse the condition: unterminated string or unknown symbol"]
    if any(token.token_type == TokenType.SEMICOLON for token in tokens):
        return None, ["semicolons are not allowed: a condition is one expression"]
    try:
        statements = sqlglot.parse(expression, read=DIALECT)
    except ParseError as exc:
        detail = exc.errors[0] if exc.errors else {}
        where = f" (column {detail['col']})" if detail.get("col") else ""
        message = detail.get("description") or _first_line(exc)
        if message.startswith("Required keyword"):
            # sqlglot names its own classes here; the author only needs to know what is missing.
            message = "the expression is incomplete"
        return None, [f"cannot parse the condition: {message}{where}"]
    except SqlglotError as exc:
        return None, [f"cannot parse the condition: {_first_line(exc)}"]
    trees = [statement for statement in statements if statement is not None]
    if len(trees) != 1:
        return None, ["a condition must be exactly one expression"]
    tree = trees[0]
    if isinstance(tree, exp.Query):
        return None, [
            "SELECT is not allowed: write a boolean expression such as steps_completed = 4"
        ]
    return tree, []


def _structure_problems(tree: exp.Expression, known: set[str] | None) -> list[str]:
    problems: list[str] = []

    def add(message: str) -> None:
        if message not in problems:
            problems.append(message)

    root = tree.unnest()
    if isinstance(root, _NON_BOOLEAN_ROOTS):
        add("the condition must be a boolean expression (a comparison, IN, BETWEEN, IS ...)")

    # Depth first, left to right, so problems come in reading order; a refused node's children
    # are not visited (a subquery's columns are not worth a second message).
    for node in tree.walk(bfs=False, prune=lambda node: not isinstance(node, _ALLOWED_NODES)):
        if isinstance(node, exp.Var):
            # Units such as DAY in INTERVAL '7' DAY or date_diff('day', ...) parse as Var.
            if not isinstance(node.parent, exp.Interval | exp.DateDiff):
                add(f"'{node.sql(dialect=DIALECT)}' is not allowed here")
            continue
        if not isinstance(node, _ALLOWED_NODES):
            add(_refusal(node))
            continue
        if isinstance(node, exp.In) and (node.args.get("query") or node.args.get("unnest")):
            add("subqueries are not allowed in a condition")
        if isinstance(node, exp.Column):
            problem = _column_problem(node, known)
            if problem:
                add(problem)
    return problems


def _column_problem(column: exp.Column, known: set[str] | None) -> str | None:
    if column.table or column.args.get("db") or column.args.get("catalog"):
        return (
            f"qualified column '{column.sql(dialect=DIALECT)}' is not allowed: "
            "write the bare column name"
        )
    if known is None:
        return None
    name = column.name
    if name.lower() in known:
        return None
    message = f"unknown column '{name}'"
    nearest = difflib.get_close_matches(name.lower(), sorted(known), n=1)
    if nearest:
        message += f"; did you mean '{nearest[0]}'?"
    identifier = column.this
    if isinstance(identifier, exp.Identifier) and identifier.quoted:
        # In SQL "double quotes" name a column; a reader who meant text needs to hear why.
        message += " (text values take 'single quotes')"
    return message


def _refusal(node: exp.Expression) -> str:
    if isinstance(node, exp.Query | exp.Subquery | exp.Exists):
        return "subqueries are not allowed in a condition"
    if isinstance(node, exp.Window):
        return "window functions are not allowed in a condition"
    if isinstance(node, exp.AggFunc):
        return f"aggregate function '{_function_name(node)}' is not allowed in a condition"
    if isinstance(node, exp.CurrentTimestamp | exp.CurrentDate | exp.CurrentTime) or (
        isinstance(node, exp.Anonymous) and _function_name(node) in {"now", "today"}
    ):
        return (
            f"'{_function_name(node)}' reads the wall clock, which is not allowed: the marts are "
            "computed as of BIS_AS_OF (use events_last_7d, is_inactive, ... instead)"
        )
    if isinstance(node, exp.Func):
        allowed = ", ".join(sorted(ALLOWED_FUNCTIONS.values()))
        return f"function '{_function_name(node)}' is not allowed (allowed: {allowed})"
    if isinstance(node, exp.Placeholder):
        return "parameters are not allowed in a condition"
    snippet = node.sql(dialect=DIALECT)
    return (
        f"'{snippet}' is not allowed in a condition (only columns, literals, comparisons, "
        "AND/OR/NOT, arithmetic, BETWEEN, IN lists, IS NULL, LIKE and whitelisted functions)"
    )


def _function_name(node: exp.Expression) -> str:
    if isinstance(node, exp.Anonymous):
        return str(node.name).lower()
    if isinstance(node, exp.Func):
        # The DuckDB spelling (random, not sqlglot's RAND), which is what authors write.
        rendered = node.sql(dialect=DIALECT)
        return rendered.split("(", 1)[0].strip().lower() if "(" in rendered else rendered.lower()
    return node.key


def _first_line(exc: Exception) -> str:
    return str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
