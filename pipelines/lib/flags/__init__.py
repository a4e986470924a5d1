"""Feature flags for lifecycle messaging (docs/architecture.md §7): load, evaluate, change.

`flags/flags.yaml` holds one flag per sequence plus the `messaging` kill switch, with a state
per environment. The plan reads it as Dagster Config defaults (`flag_config_defaults`), so a
Launchpad override changes one run and an edit (`set_flag_state`) changes the next plan.
"""

from pipelines.lib.flags.bucketing import unleash_bucket, unleash_buckets
from pipelines.lib.flags.edit import set_flag_state
from pipelines.lib.flags.evaluate import Decision, evaluate, evaluate_many
from pipelines.lib.flags.models import (
    KILL_SWITCH,
    STATES,
    EnvSetting,
    Flag,
    FlagError,
    FlagSet,
    FlagState,
    flag_config_defaults,
)
from pipelines.lib.flags.store import DEFAULT_FLAGS_PATH, load_flags, parse_flags

__all__ = [
    "DEFAULT_FLAGS_PATH",
    "KILL_SWITCH",
    "STATES",
    "Decision",
    "EnvSetting",
    "Flag",
    "FlagError",
    "FlagSet",
    "FlagState",
    "evaluate",
    "evaluate_many",
    "flag_config_defaults",
    "load_flags",
    "parse_flags",
    "set_flag_state",
    "unleash_bucket",
    "unleash_buckets",
]
