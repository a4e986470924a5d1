"""Whether a flag is enabled for a user, with the reason the ledger records."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from pipelines.lib.flags.bucketing import BUCKETS, unleash_bucket, unleash_buckets
from pipelines.lib.flags.models import EnvSetting, Flag


@dataclass(frozen=True)
class Decision:
    enabled: bool
    reason: str  # "off", "on", "admin", "not admin", "rollout bucket 37 <= 50", ...


OFF = Decision(False, "off")
ON = Decision(True, "on")
ADMIN = Decision(True, "admin")
NOT_ADMIN = Decision(False, "not admin")


def _rollout(bucket: int, percent: int) -> Decision:
    if bucket <= percent:
        return Decision(True, f"rollout bucket {bucket} <= {percent}")
    return Decision(False, f"rollout bucket {bucket} > {percent}")


def evaluate(flag: Flag, setting: EnvSetting, *, user_id: str, is_admin: bool) -> Decision:
    """Decide one user. `setting` is passed separately so a per-run override can replace the
    committed state of `flag` (the Launchpad config) without building a new Flag."""
    if setting.state == "off":
        return OFF
    if setting.state == "on":
        return ON
    if setting.state == "admins":
        return ADMIN if is_admin or user_id in flag.admin_user_ids else NOT_ADMIN
    # Rollout is pure Unleash gradual rollout: admins are not added on top, so the audience
    # is exactly `percent` of users (what `bis flags set` reports as reach).
    return _rollout(unleash_bucket(flag.key, user_id), _percent(setting))


def evaluate_many(
    flag: Flag, setting: EnvSetting, user_ids: Sequence[str], is_admin: Sequence[bool]
) -> list[Decision]:
    """`evaluate` for a whole audience, in order. Decisions are shared immutable objects (one
    per distinct reason), so a million users cost a million list slots, not a million strings.
    """
    if len(user_ids) != len(is_admin):
        raise ValueError(f"{len(user_ids)} user ids but {len(is_admin)} is_admin values")
    if setting.state == "off":
        return [OFF] * len(user_ids)
    if setting.state == "on":
        return [ON] * len(user_ids)
    if setting.state == "admins":
        listed = frozenset(flag.admin_user_ids)
        return [
            ADMIN if admin or user_id in listed else NOT_ADMIN
            for user_id, admin in zip(user_ids, is_admin, strict=True)
        ]
    percent = _percent(setting)
    by_bucket = [_rollout(bucket, percent) for bucket in range(BUCKETS + 1)]
    return [by_bucket[bucket] for bucket in unleash_buckets(flag.key, user_ids)]


def _percent(setting: EnvSetting) -> int:
    # EnvSetting guarantees a percent for rollout; model_construct() could still skip that.
    if setting.percent is None:
        raise ValueError("state rollout needs a percent")
    return setting.percent
