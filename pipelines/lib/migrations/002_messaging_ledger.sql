-- The send ledger and the suppression list (docs/architecture.md §4, §8). Owned by the messaging engine;
-- dbt reads these as sources and never drops them.
create table if not exists messaging.sends (
    -- md5(user_id|sequence_id|step_id|enrollment_key): re-planning can never duplicate a send.
    send_id              varchar     primary key,
    user_id              varchar     not null,
    email                varchar,
    sequence_id          varchar     not null,
    step_id              varchar     not null,
    template             varchar     not null,
    enrollment_key       timestamptz not null,  -- qualified_at of the enrollment
    -- planned | sending | sent | failed | held_out | suppressed | capped | deferred | unknown
    -- | cancelled (left the audience or flag turned off before it was sent) [project]
    status               varchar     not null,
    status_reason        varchar,
    variant              varchar     not null,  -- treatment | holdout
    flag_key             varchar     not null,
    flag_state           varchar     not null,
    flag_reason          varchar     not null,
    provider             varchar,
    provider_message_id  varchar,
    attempts             integer     not null default 0,
    last_error           varchar,
    due_at               timestamptz not null,  -- enrollment_key + the step's delay
    plan_id              varchar     not null,  -- the plan that wrote or last re-decided it
    send_run_id          varchar,               -- the send run that claimed it
    planned_at           timestamptz not null,
    sent_at              timestamptz,
    updated_at           timestamptz not null
);

create table if not exists messaging.suppressions (
    email       varchar,
    user_id     varchar,
    reason      varchar     not null,  -- unsubscribe | bounce | spamreport | manual
    source      varchar     not null,
    created_at  timestamptz not null
);

-- One row per message_plan evaluation: what it decided, for the UI and the send sensor.
create table if not exists messaging.plans (
    plan_id     varchar     primary key,
    as_of       timestamptz not null,
    env         varchar     not null,
    created_at  timestamptz not null
);
