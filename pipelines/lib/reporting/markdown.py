"""Markdown tables for Dagster metadata (the dashboard asset shows them in the UI)."""

from __future__ import annotations

from typing import Any


def _pct(value: float | None, *, signed: bool = False) -> str:
    if value is None:
        return "n/a"
    return f"{value * 100:+.1f}%" if signed else f"{value * 100:.1f}%"


def _p(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.3g}"


def experiments_markdown(rows: list[dict[str, Any]] | None) -> str:
    """fct_sequence_experiments as a table: arms, lift with its 95% CI, p-value, SRM."""
    if rows is None:
        return "_fct_sequence_experiments does not exist in this warehouse yet._"
    if not rows:
        return "_No enrollments yet: fct_sequence_experiments has no rows._"
    lines = [
        "| sequence | treatment | holdout | lift | 95% CI | p | significant | SRM |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for row in sorted(rows, key=lambda r: (r["sequence_id"] == "__overall__", r["sequence_id"])):
        lines.append(
            f"| {row['sequence_id']}"
            f" | {row['treatment_converted']}/{row['treatment_users']}"
            f" ({_pct(row['treatment_conversion_rate'])})"
            f" | {row['holdout_converted']}/{row['holdout_users']}"
            f" ({_pct(row['holdout_conversion_rate'])})"
            f" | {_pct(row['absolute_lift'], signed=True)}"
            f" | {_pct(row['lift_ci_lower'])} to {_pct(row['lift_ci_upper'])}"
            f" | {_p(row['p_value'])}"
            f" | {'yes' if row['is_significant'] else 'no'}"
            f" | {'**mismatch**' if row['srm_flag'] else 'ok'} |"
        )
    return "\n".join(lines)
