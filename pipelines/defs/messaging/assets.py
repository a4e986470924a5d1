"""message_plan: who is due which step now, and the decision for each.

The rules are docs/architecture.md §6-§8.
"""

import dagster as dg

from pipelines.defs.messaging.config import FlagStateConfig, build_plan_config, guardrails_from
from pipelines.defs.resources import WAREHOUSE_POOL, WarehouseResource
from pipelines.defs.run_context import dagster_run_context
from pipelines.lib.flags import EnvSetting
from pipelines.lib.messaging.report import plan_markdown
from pipelines.lib.messaging.runtime import load_plan_inputs
from pipelines.lib.settings import load_settings
from pipelines.lib.steps import email_events_step, plan_step

_LOADED = load_plan_inputs()
_ENV = load_settings().env
MessagePlanConfig = build_plan_config(_LOADED.flags, _ENV)
MARTS = [dg.AssetKey(["marts", name]) for name in ("dim_users", "user_segments", "user_progress")]
PLAN_DEPS = [*MARTS, dg.AssetKey("email_events")]  # suppressions come from email events


def launchpad_overrides(flags_config: dg.Config) -> dict[str, EnvSetting]:
    """Flags whose run config differs from the YAML as loaded: those are Launchpad edits.
    Everything else is read from flags.yaml now, so a committed change needs no redeploy."""
    overrides = {}
    for key, loaded in _LOADED.flags.flags.items():
        value: FlagStateConfig = getattr(flags_config, key)
        default = loaded.environments[_ENV]
        if (value.state, value.percent) != (default.state, default.percent):
            overrides[key] = value.to_setting()
    return overrides


@dg.asset(
    group_name="messaging",
    pool=WAREHOUSE_POOL,
    deps=PLAN_DEPS,
    kinds={"duckdb", "python"},
    description="Decides, set-based, which step of which sequence each user is due at "
    "the pipeline clock, and records it in messaging.sends.",
)
def message_plan(
    context: dg.AssetExecutionContext, config: MessagePlanConfig, warehouse: WarehouseResource
) -> dg.MaterializeResult:
    run = dagster_run_context(context, guardrails_from(config))
    overrides = launchpad_overrides(config.flags)
    if overrides:
        context.log.info(f"Launchpad flag overrides for this run: {sorted(overrides)}")
    result = plan_step(run, warehouse.connect, flag_overrides=overrides).plan
    return dg.MaterializeResult(
        metadata={
            "plan_id": result.plan_id,
            "as_of": run.as_of.isoformat(),
            "planned": result.total("planned"),
            "held_out": result.total("held_out"),
            "suppressed": result.total("suppressed"),
            "capped": result.total("capped"),
            "deferred": result.total("deferred"),
            "cancelled": sum(result.cancelled.values()),
            "invalid_timezones_as_utc": result.invalid_timezones,
            "flag_overrides": dg.MetadataValue.json(
                {k: v.model_dump() for k, v in overrides.items()}
            ),
            "decisions": dg.MetadataValue.md(plan_markdown(result)),
        }
    )


@dg.asset(
    group_name="messaging",
    pool=WAREHOUSE_POOL,
    kinds={"duckdb", "python"},
    description="SendGrid Event Webhook files → raw.email_events (deduplicated on "
    "sg_event_id); unsubscribes, bounces and spam reports become suppressions, and "
    "delivered events confirm sends left `unknown`.",
)
def email_events(
    context: dg.AssetExecutionContext, warehouse: WarehouseResource
) -> dg.MaterializeResult:
    result = email_events_step(dagster_run_context(context), warehouse.connect)
    loaded, applied = result.loaded, result.applied
    return dg.MaterializeResult(
        metadata={
            "files": loaded.files,
            "events_loaded": loaded.loaded,
            "events_duplicate": loaded.duplicate,
            "events_rejected": loaded.rejected,  # kept in raw.email_events_rejected
            "files_skipped": dg.MetadataValue.md(
                "\n".join(f"- `{path}`: {why}" for path, why in loaded.skipped) or "none"
            ),
            "suppressions_added": applied.suppressions_added,
            "unknown_sends_confirmed": applied.confirmed_unknown,
        }
    )
