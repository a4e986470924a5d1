"""`bis preview`: the next message for one user and why, without writing anything."""

from __future__ import annotations

import pytest

from pipelines.lib.messaging.plan import plan_messages
from pipelines.lib.messaging.preview import UnknownUserError, preview_user
from pipelines.lib.messaging.runtime import PlanInputs
from tests.lib.messaging.conftest import T, add_user


def test_preview_explains_quiet_hours_and_writes_nothing(ledger, test_sequences, flags) -> None:
    add_user(ledger, "tokyo", steps=1, segment="stalled", timezone="Asia/Tokyo")
    inputs = PlanInputs(test_sequences, flags)

    lines = preview_user(ledger, "tokyo", inputs, env="dev", as_of=T)

    text = "\n".join(lines)
    assert "NEXT: nudge_a/first → deferred (quiet hours: 00:00 in Asia/Tokyo)" in text
    assert "nudge_a (priority 20, flag nurture_stalled): in audience (segment stalled)" in text
    assert ledger.execute("select count(*) from messaging.sends").fetchone()[0] == 0
    # The real plan agrees with the preview.
    plan_messages(ledger, sequences=test_sequences, flags=flags, env="dev", as_of=T, plan_id="p1")
    assert ledger.execute("select status from messaging.sends").fetchone()[0] == "deferred"


def test_preview_says_why_nothing_is_due(ledger, test_sequences, flags) -> None:
    add_user(ledger, "done", steps=4, segment=None)
    lines = preview_user(ledger, "done", PlanInputs(test_sequences, flags), env="dev", as_of=T)
    assert "NEXT: nothing is due now" in lines
    assert any("not in audience (segment stalled)" in line for line in lines)


def test_preview_of_an_unknown_user_is_a_clear_error(ledger, test_sequences, flags) -> None:
    with pytest.raises(UnknownUserError, match=r"'ghost' is not in marts\.dim_users"):
        preview_user(ledger, "ghost", PlanInputs(test_sequences, flags), env="dev", as_of=T)
