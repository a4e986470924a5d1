"""The send-time gate: a planned row goes out only if it is still allowed when it is claimed.

A plan decides with the flags of its moment, and its rows may wait minutes (or a whole send
run of 50,000) before they go out. An operator who turns a flag off, narrows a rollout or hits
the kill switch after the plan must stop what is already planned, so every batch re-reads
`flags.yaml` (only when its content changed) and re-decides each row: the kill switch, the
sequence's flag in this environment, the admin list or the rollout bucket. The suppression
list is checked in SQL inside the claim's transaction (send.py). Rows no longer allowed become
`cancelled` with the reason.

Launchpad overrides are for one plan: a row planned under an override keeps it as long as
the committed setting of that flag is the one the plan saw. A later change to `flags.yaml` is
a newer decision and wins.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path

import duckdb

from pipelines.lib.flags import (
    KILL_SWITCH,
    EnvSetting,
    FlagError,
    FlagSet,
    evaluate_many,
    parse_flags,
)
from pipelines.lib.yaml_limits import YamlTooLargeError, read_yaml_bytes


class SendStopped(RuntimeError):
    """Sending cannot go on safely (e.g. flags.yaml became invalid): rows stay `planned`."""


@dataclass(frozen=True)
class GateRow:
    send_id: str
    user_id: str
    flag_key: str
    plan_id: str
    is_admin: bool


def plan_flag_settings(
    flags: FlagSet, env: str, effective: dict[str, EnvSetting]
) -> dict[str, dict[str, dict]]:
    """What `messaging.plans.flag_settings` records: committed and effective per flag."""
    return {
        key: {
            "committed": flags.setting(key, env).model_dump(),
            "effective": setting.model_dump(),
        }
        for key, setting in sorted(effective.items())
    }


class FlagsFile:
    """`flags.yaml` as it is now, re-parsed only when its bytes change."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._digest: str | None = None
        self._flags: FlagSet | None = None

    def current(self) -> FlagSet:
        try:
            data = read_yaml_bytes(self.path)  # bounded: a huge file is refused unread
        except (OSError, YamlTooLargeError) as exc:
            why = exc.strerror if isinstance(exc, OSError) else str(exc)
            raise SendStopped(
                f"{self.path}: cannot read the flags ({why}); sending stopped,"
                " the remaining rows stay planned"
            ) from None
        digest = hashlib.sha256(data).hexdigest()
        if digest != self._digest or self._flags is None:
            try:
                text = data.decode("utf-8")
                self._flags = parse_flags(text, self.path)
            except (FlagError, UnicodeDecodeError) as exc:
                raise SendStopped(
                    f"flags changed during the send and are invalid, so sending stopped (the"
                    f" remaining rows stay planned): {exc}"
                ) from None
            self._digest = digest
        return self._flags


class SendGate:
    """Decides, row by row, whether a planned message may still go out in `env`."""

    def __init__(self, flags_path: Path, env: str) -> None:
        self.env = env
        self.flags_file = FlagsFile(flags_path)
        self._plans: dict[str, dict[str, dict[str, dict]]] = {}

    def _plan_settings(
        self, con: duckdb.DuckDBPyConnection, plan_ids: set[str]
    ) -> dict[str, dict[str, dict[str, dict]]]:
        missing = sorted(plan_ids - self._plans.keys())
        if missing:
            found = dict(
                con.execute(
                    "select plan_id, flag_settings from messaging.plans"
                    " where plan_id in (select unnest($ids))",
                    {"ids": missing},
                ).fetchall()
            )
            for plan_id in missing:
                raw = found.get(plan_id)
                self._plans[plan_id] = json.loads(raw) if raw else {}
        return {plan_id: self._plans[plan_id] for plan_id in plan_ids}

    def _setting(self, flags: FlagSet, key: str, recorded: dict[str, dict]) -> EnvSetting | None:
        """The setting that decides `key` for a row of a plan that recorded `recorded`."""
        if key not in flags.flags:
            return None
        committed = flags.setting(key, self.env)
        seen = recorded.get(key)
        if seen and seen.get("committed") == committed.model_dump():
            return EnvSetting.model_validate(seen["effective"])
        return committed

    def refusals(self, con: duckdb.DuckDBPyConnection, rows: list[GateRow]) -> dict[str, str]:
        """send_id -> why it may no longer be sent, for each refused row (allowed rows absent).

        Raises SendStopped when the flags cannot be read: sending blind would ignore a rollback.
        """
        if not rows:
            return {}
        flags = self.flags_file.current()
        plans = self._plan_settings(con, {row.plan_id for row in rows})
        # One evaluate_many per (flag, setting): the same decisions the planner makes.
        groups: dict[tuple[str, EnvSetting | None], list[GateRow]] = {}
        for row in rows:
            for key in (KILL_SWITCH, row.flag_key):
                setting = self._setting(flags, key, plans[row.plan_id])
                groups.setdefault((key, setting), []).append(row)
        refused: dict[str, str] = {}
        # Kill-switch groups first, so its reason is the one recorded when both refuse.
        ordered = sorted(groups.items(), key=lambda item: item[0][0] != KILL_SWITCH)
        for (key, setting), members in ordered:
            if setting is None:
                for row in members:
                    refused.setdefault(row.send_id, f"flag {key} is no longer in flags.yaml")
                continue
            decisions = evaluate_many(
                flags.flags[key],
                setting,
                [row.user_id for row in members],
                [row.is_admin for row in members],
            )
            for row, decision in zip(members, decisions, strict=True):
                if not decision.enabled:
                    refused.setdefault(
                        row.send_id,
                        f"flag {key} [{self.env}] is {setting.describe()} since the plan:"
                        f" {decision.reason}",
                    )
        return refused
