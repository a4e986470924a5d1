"""Stages that plan and send messages to the local SendGrid-compatible server."""

from __future__ import annotations

import time
from typing import Any

from bench.stage_kit import Config, Result, timed
from pipelines.lib.settings import Settings


def _sender(cfg: Config, per_request: int) -> Any:
    from pipelines.lib.email import SendGridSender, TemplateRenderer
    from pipelines.lib.messaging.runtime import sender_identity
    from pipelines.lib.settings import TEMPLATES_DIR

    class CountingSender(SendGridSender):
        """Counts HTTP requests (send_planned counts batches of up to 1000 only) and times
        the sender (rendering + HTTP) and the HTTP round trips alone: the send profile."""

        http_requests = 0
        http_seconds = 0.0
        sender_seconds = 0.0

        def send(self, batch: Any) -> Any:
            start = time.perf_counter()
            try:
                return super().send(batch)
            finally:
                self.sender_seconds += time.perf_counter() - start

        def _call(self, body: dict[str, Any]) -> Any:
            self.http_requests += 1
            start = time.perf_counter()
            try:
                return super()._call(body)
            finally:
                self.http_seconds += time.perf_counter() - start

    identity = sender_identity(cfg.settings())
    return CountingSender(
        api_key=cfg.raw["sendgrid_api_key"],
        host=cfg.raw["sendgrid_url"],
        renderer=TemplateRenderer(TEMPLATES_DIR, identity),
        identity=identity,
        sandbox=False,
        max_recipients_per_request=per_request,
    )


def _send(con: Any, sender: Any, run_id: str, clock: Any) -> tuple[float, Any]:
    from pipelines.lib.messaging.gate import SendGate
    from pipelines.lib.messaging.send import send_planned
    from pipelines.lib.settings import FLAGS_FILE

    return timed(
        lambda: send_planned(
            con,
            sender=sender,
            run_id=run_id,
            max_sends_per_run=10_000_000,
            gate=SendGate(FLAGS_FILE, "dev"),
            clock=clock,
        )
    )


def stage_plan_send(cfg: Config) -> Result:
    """message_plan at T0, then send every planned message in batches to the local server."""
    return plan_send(cfg, cfg.settings())


def plan_send(cfg: Config, settings: Settings) -> Result:
    from pipelines.lib.messaging.plan import plan_messages
    from pipelines.lib.messaging.runtime import load_plan_inputs, new_id
    from pipelines.lib.warehouse import open_warehouse

    inputs = load_plan_inputs()
    with open_warehouse(settings.warehouse) as con:
        plan_seconds, plan = timed(
            lambda: plan_messages(
                con,
                sequences=inputs.sequences,
                flags=inputs.flags,
                env="dev",
                as_of=cfg.t0,
                plan_id=new_id("plan", cfg.t0),
            )
        )
        sender = _sender(cfg, 1000)
        send_seconds, report = _send(con, sender, "bench-send-batched", cfg.t0)
    statuses = {}
    for (_, status), count in plan.decisions.items():
        statuses[status] = statuses.get(status, 0) + count
    sent = report.statuses.get("sent", 0)
    return {
        "seconds": plan_seconds + send_seconds,
        "events": None,
        "plan_seconds": plan_seconds,
        "send_seconds": send_seconds,
        "decisions": statuses,
        "messages": report.attempted,
        "sent": sent,
        "requests": sender.http_requests,
        "send_statuses": dict(report.statuses),
        "batched_per_s": report.attempted / send_seconds if send_seconds else None,
        "send_profile": _send_profile(sender, send_seconds),
    }


def _send_profile(sender: Any, seconds: float) -> dict[str, float]:
    """Where the send time went: rendering and batching (in the sender, outside HTTP), the
    HTTP round trips (the local server's work included), and the rest: the ledger (claim and
    resolve updates on messaging.sends) and reading the planned rows."""
    return {
        "render_and_batch_seconds": round(sender.sender_seconds - sender.http_seconds, 3),
        "http_seconds": round(sender.http_seconds, 3),
        "ledger_and_rows_seconds": round(seconds - sender.sender_seconds, 3),
    }


def stage_send_one_by_one(cfg: Config) -> Result:
    """The same messages again, one request each: the first N sent rows are re-planned.

    Only a sample (config `one_by_one_limit`), because one request per message is slow by
    design; the rate is what is reported.
    """
    from pipelines.lib.warehouse import open_warehouse

    limit = int(cfg.raw.get("one_by_one_limit", 2000))
    with open_warehouse(cfg.settings().warehouse) as con:
        con.execute(
            """
            update messaging.sends set status = 'planned'
            where send_id in (
                select send_id from messaging.sends
                where status = 'sent' and send_run_id = 'bench-send-batched'
                order by send_id limit $limit)
            """,
            {"limit": limit},
        )
        sender = _sender(cfg, 1)
        seconds, report = _send(con, sender, "bench-send-one-by-one", cfg.t0)
    return {
        "seconds": seconds,
        "events": None,
        "messages": report.attempted,
        "requests": sender.http_requests,
        "send_statuses": dict(report.statuses),
        "one_by_one_per_s": report.attempted / seconds if seconds else None,
        "send_profile": _send_profile(sender, seconds),
    }
