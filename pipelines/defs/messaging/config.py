"""Run config of message_plan and send_messages: flags and guardrails for one run.

The Launchpad shows every flag with its committed state for this environment; editing one
there applies to that run only. Committed changes go through `flags/flags.yaml` in review.
The guardrails are the ones `bis run --cap-per-day …` takes (docs/architecture.md §8).
"""

import dagster as dg
from pydantic import Field, create_model

from pipelines.lib.flags import EnvSetting, FlagSet
from pipelines.lib.messaging.policy import (
    GUARDRAIL_FIELDS,
    GUARDRAIL_HELP,
    Guardrails,
    guardrails_with,
)

DEFAULTS = Guardrails()
# The plan applies caps and quiet hours; the send applies the per-run ceiling.
PLAN_GUARDRAILS = ("cap_per_day", "cap_per_week", "quiet_start_hour", "quiet_end_hour")


class FlagStateConfig(dg.Config):
    state: str = Field(description="off | admins | rollout | on")
    percent: int | None = Field(default=None, description="rollout only: 0-100")

    def to_setting(self) -> EnvSetting:
        return EnvSetting(state=self.state, percent=self.percent)


class SendConfig(dg.Config):
    max_sends_per_run: int = Field(
        default=DEFAULTS.max_sends_per_run, description=GUARDRAIL_HELP["max_sends_per_run"]
    )


def _guardrail_field(name: str) -> tuple[type, object]:
    return (int, Field(default=getattr(DEFAULTS, name), description=GUARDRAIL_HELP[name]))


def build_plan_config(flags: FlagSet, env: str) -> type[dg.Config]:
    flag_fields = {
        key: (
            FlagStateConfig,
            FlagStateConfig(
                state=flags.setting(key, env).state, percent=flags.setting(key, env).percent
            ),
        )
        for key in sorted(flags.flags)
    }
    flags_model = create_model("FlagsConfig", __base__=dg.Config, **flag_fields)
    return create_model(
        "MessagePlanConfig",
        __base__=dg.Config,
        flags=(flags_model, flags_model()),
        **{name: _guardrail_field(name) for name in PLAN_GUARDRAILS},
    )


def guardrails_from(config: dg.Config) -> Guardrails:
    """The guardrails a run config sets; the contract's defaults for the rest."""
    return guardrails_with({name: getattr(config, name, None) for name in GUARDRAIL_FIELDS})
