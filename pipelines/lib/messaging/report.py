"""Summaries of a plan and a send run, for the terminal and Dagster metadata."""

from __future__ import annotations

from pipelines.lib.messaging.plan import PlanResult
from pipelines.lib.messaging.send import SendReport

DECISIONS = ("planned", "held_out", "suppressed", "capped", "deferred")


def plan_markdown(result: PlanResult) -> str:
    """Messages per sequence and decision, then who was not enrolled and why."""
    sequences = sorted({s for s, _ in result.decisions} | {s for s, _ in result.not_enrolled})
    lines = ["| sequence | " + " | ".join(DECISIONS) + " |", "|---|" + "---|" * len(DECISIONS)]
    for sequence in sequences:
        counts = " | ".join(str(result.decisions.get((sequence, d), 0)) for d in DECISIONS)
        lines.append(f"| {sequence} | {counts} |")
    if result.not_enrolled:
        lines += ["", "| not enrolled (flag) | users |", "|---|---|"]
        lines += [
            f"| {s}: {reason} | {n} |" for (s, reason), n in sorted(result.not_enrolled.items())
        ]
    if result.cancelled:
        lines += ["", "| cancelled | rows |", "|---|---|"]
        lines += [f"| {reason} | {n} |" for reason, n in result.cancelled.most_common()]
    return "\n".join(lines)


def decision_counts(result: PlanResult) -> str:
    """ "planned 3, held_out 1, …": messages per decision."""
    return ", ".join(f"{d} {result.total(d)}" for d in DECISIONS)


def status_counts(report: SendReport) -> str:
    """ "sent 3, failed 0, unknown 0": rows per provider outcome."""
    return ", ".join(f"{s} {report.statuses.get(s, 0)}" for s in ("sent", "failed", "unknown"))


def plan_summary(result: PlanResult) -> str:
    not_enrolled = sum(result.not_enrolled.values())
    return (
        f"plan {result.plan_id}: {decision_counts(result)}"
        f"; not enrolled (flags) {not_enrolled}; cancelled {sum(result.cancelled.values())}"
    )


def send_summary(report: SendReport) -> str:
    cancelled = sum(report.cancelled.values())
    summary = (
        f"send via {report.provider}: {status_counts(report)} in {report.requests} request(s);"
        f" orphaned 'sending' rows marked unknown: {report.orphans_marked_unknown}"
    )
    if cancelled:
        # Rows the send-time gate stopped: a flag changed or an address was suppressed
        # after the plan. The most common reason tells the operator which.
        reason, _ = report.cancelled.most_common(1)[0]
        summary += f"; cancelled at send time {cancelled} (e.g. {reason})"
    return summary
