"""`bis flags list` and `bis flags set`: flag states per environment and who they reach.

Reach is what the flag alone enables among `marts.dim_users` (read-only connection); a user
gets email only when the `messaging` kill switch is enabled for them too.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from pipelines.lib.engine.url import WarehouseUrl
from pipelines.lib.flags import KILL_SWITCH, EnvSetting, Flag, FlagError, evaluate_many, load_flags
from pipelines.lib.settings import ENVIRONMENTS
from pipelines.lib.warehouse import WarehouseError, WarehouseLockedError, connect

NOT_BUILT = "warehouse not built yet"
_LOCK_WAIT_SECONDS = 5.0


@dataclass(frozen=True)
class Users:
    """The flag audience: every user in dim_users, in a stable order."""

    user_ids: list[str]
    is_admin: list[bool]

    def reach(self, flag: Flag, setting: EnvSetting) -> int:
        decisions = evaluate_many(flag, setting, self.user_ids, self.is_admin)
        return sum(1 for decision in decisions if decision.enabled)


def load_users(warehouse: Path | WarehouseUrl | None) -> tuple[Users | None, str]:
    """(users, "") or (None, why reach cannot be computed). `warehouse`: the DuckDB file
    readers open (the published copy) or the server warehouse."""
    if warehouse is None or (isinstance(warehouse, Path) and not warehouse.exists()):
        return None, NOT_BUILT
    try:
        con = connect(warehouse, read_only=True, max_wait_seconds=_LOCK_WAIT_SECONDS)
    except WarehouseLockedError:
        return None, "warehouse locked by a run; try again when it finishes"
    except WarehouseError as exc:
        return None, f"warehouse unreadable ({exc})"
    try:
        rows = con.execute(
            "select cast(user_id as varchar), coalesce(is_admin, false)"
            " from marts.dim_users order by user_id"
        ).fetchall()
    except WarehouseError:
        return None, f"{NOT_BUILT} (no marts.dim_users)"
    finally:
        con.close()
    return Users([row[0] for row in rows], [bool(row[1]) for row in rows]), ""


def _reach_text(users: Users, flag: Flag, setting: EnvSetting) -> str:
    reached = users.reach(flag, setting)
    total = len(users.user_ids)
    share = f" ({reached / total:.1%})" if total else ""
    return f"{reached:,} of {total:,} users{share}"


def _table(rows: list[list[str]]) -> list[str]:
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]) - 1)]
    return [
        "  ".join(
            [*(cell.ljust(width) for cell, width in zip(row, widths, strict=False)), row[-1]]
        ).rstrip()
        for row in rows
    ]


def flags_list(
    path: Path, env_filter: str | None = None, warehouse: Path | WarehouseUrl | None = None
) -> list[str]:
    """A table of every flag: its state per environment (with reach when the warehouse exists)
    and its description. Raises FlagError when the file is invalid or `env_filter` unknown."""
    if env_filter is not None and env_filter not in ENVIRONMENTS:
        raise FlagError(f"unknown environment {env_filter!r} (known: {', '.join(ENVIRONMENTS)})")
    flags = load_flags(path)
    envs = [env_filter] if env_filter else list(ENVIRONMENTS)
    users, why = load_users(warehouse)
    rows = [["FLAG", *(env.upper() for env in envs), "DESCRIPTION"]]
    for key, flag in flags.flags.items():
        cells = []
        for env in envs:
            setting = flag.environments[env]
            reach = f" ({users.reach(flag, setting):,})" if users is not None else ""
            cells.append(setting.describe() + reach)
        rows.append([key, *cells, flag.description])
    lines = _table(rows)
    if users is not None:
        lines.append(
            f"(n) = users of {len(users.user_ids):,} in dim_users the flag alone reaches; "
            f"email also needs `{KILL_SWITCH}` enabled for them"
        )
    else:
        lines.append(f"reach: {why}")
    return lines


def flags_set(
    path: Path,
    key: str,
    state: str,
    percent: int | None,
    env: str,
    force: bool = False,
    warehouse: Path | WarehouseUrl | None = None,
) -> tuple[int, list[str]]:
    """Change one flag in one environment. Exit 0 with before/after and reach, or exit 2 with
    one `error:` line (unknown key or environment, bad state or percent, refused narrowing)."""
    from pipelines.lib.flags import set_flag_state

    try:
        before, after = set_flag_state(path, key, env, state, percent, force=force)
    except FlagError as exc:
        return 2, [f"error: {'; '.join(exc.problems)}"]
    if before == after:
        lines = [f"{key} [{env}]: unchanged, already {after.describe()} (nothing written)"]
    else:
        lines = [f"{key} [{env}]: {before.describe()} -> {after.describe()} (wrote {path})"]
    flags = load_flags(path)
    users, why = load_users(warehouse)
    if users is None:
        lines.append(f"reach: {why}")
    else:
        lines.append(f"reach: {_reach_text(users, flags.flag(key), after)}")
    kill_switch = flags.setting(KILL_SWITCH, env)
    if key != KILL_SWITCH and kill_switch.state == "off":
        lines.append(f"note: `{KILL_SWITCH}` is off in {env}, so nobody gets email there yet")
    return 0, lines
