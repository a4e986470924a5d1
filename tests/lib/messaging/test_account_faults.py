"""Account faults never fail messages: a revoked key stops the run, and the rows stay sendable.

Only a fault about a message fails that message. 401/403 (and a wrong host, or a 400 that
names only account-level fields) would refuse every message alike: failing them would move
their users on to later steps as if they had been tried.
"""

from __future__ import annotations

import pytest

from pipelines.cli import main
from pipelines.lib.email.retry import classify_response
from pipelines.lib.messaging.send import SendHalted, send_planned
from pipelines.lib.warehouse import open_warehouse
from tests.lib.messaging.conftest import MARTS_DDL, T, add_user
from tests.lib.messaging.test_send import assert_invariants, counts, dev_gate, plant, sendgrid
from tests.support.fake_sendgrid import FakeSendGrid

ACCOUNT_FAULTS = [
    (
        401,
        {
            "errors": [
                {
                    "message": "The provided authorization grant is invalid, expired, or revoked",
                    "field": None,
                }
            ]
        },
    ),
    (403, {"errors": [{"message": "access forbidden", "field": None}]}),
    (
        403,
        {
            "errors": [
                {
                    "message": "The from address does not match a verified Sender Identity",
                    "field": "from",
                }
            ]
        },
    ),
    (404, None),
    (
        400,
        {
            "errors": [
                {
                    "message": "The from email does not contain a valid address.",
                    "field": "from.email",
                }
            ]
        },
    ),
    (400, {"errors": [{"message": "The asm group id is invalid", "field": "asm.group_id"}]}),
]
MESSAGE_FAULTS = [
    (
        400,
        {
            "errors": [
                {
                    "message": "Does not contain a valid address.",
                    "field": "personalizations.0.to.0.email",
                }
            ]
        },
    ),
    (400, {"errors": [{"message": "bad request"}]}),
    (
        400,
        {
            "errors": [
                {"message": "invalid from", "field": "from"},
                {"message": "bad to", "field": "personalizations.3.to"},
            ]
        },
    ),
    (413, {"errors": [{"message": "payload too large"}]}),
]


@pytest.mark.parametrize(("status", "body"), ACCOUNT_FAULTS)
def test_account_faults_stop_the_run_and_leave_every_row_planned(
    ledger, sequences_dir, status: int, body
) -> None:
    plant(ledger, 2500)
    with FakeSendGrid() as server:
        server.fail_next(status, body=body)
        with pytest.raises(SendHalted, match="refused the account") as halted:
            send_planned(
                ledger,
                sender=sendgrid(server, sequences_dir / "templates"),
                run_id="r1",
                max_sends_per_run=10_000,
                gate=dev_gate(),
                clock=T,
            )
        assert len(server.requests) == 1  # stopped at the first batch, no retries
        assert counts(ledger) == {"planned": 2500}
        assert halted.value.report.statuses == {}
        assert f"HTTP {status}" in str(halted.value)
        # Once the account is fixed, the same rows go out, each exactly once.
        report = send_planned(
            ledger,
            sender=sendgrid(server, sequences_dir / "templates"),
            run_id="r2",
            max_sends_per_run=10_000,
            gate=dev_gate(),
            clock=T,
        )
        accepted = server.accepted_send_ids()
    assert report.statuses == {"sent": 2500}
    assert len(accepted) == len(set(accepted)) == 2500
    assert_invariants(ledger)


def test_a_key_revoked_mid_batch_keeps_what_went_out_and_releases_the_rest(
    ledger, sequences_dir
) -> None:
    plant(ledger, 2500)
    with FakeSendGrid() as server:
        # 500 recipients per request: the first batch of 1000 is two requests; the second
        # request meets the revoked key.
        server.fail_next(401, when=lambda request: len(server.requests) == 2)
        sender = sendgrid(server, sequences_dir / "templates", max_recipients_per_request=500)
        with pytest.raises(SendHalted) as halted:
            send_planned(
                ledger,
                sender=sender,
                run_id="r1",
                max_sends_per_run=10_000,
                gate=dev_gate(),
                clock=T,
            )
        first = server.accepted_send_ids()
    assert len(first) == 500
    assert halted.value.report.statuses == {"sent": 500}
    assert "500 claimed rows put back to planned" in str(halted.value)
    assert counts(ledger) == {"sent": 500, "planned": 2000}
    reasons = ledger.execute(
        "select distinct status_reason from messaging.sends where status = 'planned'"
        " and status_reason like 'not sent:%'"
    ).fetchall()
    assert len(reasons) == 1 and "HTTP 401" in reasons[0][0]
    assert_invariants(ledger)


@pytest.mark.parametrize(("status", "body"), MESSAGE_FAULTS)
def test_faults_about_messages_still_fail_those_messages(status: int, body) -> None:
    import json

    verdict = classify_response(status, {}, json.dumps(body), now=0.0).verdict
    assert verdict == "failed"


@pytest.mark.parametrize(("status", "body"), ACCOUNT_FAULTS)
def test_account_faults_are_judged_halt(status: int, body) -> None:
    import json

    raw = json.dumps(body) if body is not None else ""
    assert classify_response(status, {}, raw, now=0.0).verdict == "halt"


def test_bis_send_with_a_revoked_key_prints_one_line_and_exits_1(
    data_dir, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture
) -> None:
    with open_warehouse(data_dir / "warehouse.duckdb") as con:
        con.execute(MARTS_DDL)
        for user in ("k1", "k2", "k3"):
            add_user(con, user, steps=1, segment="stalled")
    with FakeSendGrid(api_key="SG.current-key.0123456789abcdef") as server:
        monkeypatch.setenv("BIS_EMAIL_SENDER", "sendgrid")
        monkeypatch.setenv("SENDGRID_HOST", server.url)
        monkeypatch.setenv("SENDGRID_API_KEY", "SG.revoked-key.0123456789abcdef")
        monkeypatch.setenv("BIS_FROM_EMAIL", "hello@example.com")
        monkeypatch.setenv("BIS_UNSUBSCRIBE_URL", "https://example.com/unsubscribe")
        monkeypatch.setenv("BIS_POSTAL_ADDRESS", "1 Example Street, Springfield")
        code = main(["send", "--as-of", T.isoformat()])
        requests = len(server.requests)
    out, err = capsys.readouterr()
    assert code == 1, err
    assert err == ""
    stopped = [line for line in out.splitlines() if "STOPPED" in line]
    assert len(stopped) == 1, out
    assert "HTTP 401" in stopped[0] and "SENDGRID_API_KEY" in stopped[0]
    assert "revoked-key" not in out
    assert requests == 1
    with open_warehouse(data_dir / "warehouse.duckdb") as con:
        statuses = dict(
            con.execute("select status, count(*) from messaging.sends group by 1").fetchall()
        )
    assert statuses.get("failed", 0) == 0 and statuses.get("planned", 0) >= 1
