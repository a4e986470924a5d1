"""message_plan's run config: one entry per flag, defaults from flags/flags.yaml.

The Launchpad shows every flag with its committed state for this environment; editing one
there applies to that run only. Committed changes go through `flags/flags.yaml` in review.
"""

import dagster as dg
from pydantic import Field, create_model

from pipelines.lib.flags import EnvSetting, FlagSet
from pipelines.lib.messaging.policy import Guardrails


class FlagStateConfig(dg.Config):
    state: str = Field(description="off | admins | rollout | on")
    percent: int | None = Field(default=None, description="rollout only: 0-100")

    def to_setting(self) -> EnvSetting:
        return EnvSetting(state=self.state, percent=self.percent)


def build_plan_config(flags: FlagSet, env: str) -> type[dg.Config]:
    defaults = Guardrails()
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
        cap_per_day=(int, defaults.cap_per_day),
        cap_per_week=(int, defaults.cap_per_week),
        quiet_start_hour=(int, defaults.quiet_start_hour),
        quiet_end_hour=(int, defaults.quiet_end_hour),
    )
