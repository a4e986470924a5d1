-- SendGrid Event Webhook events (docs/architecture.md §4): one row per event, unique sg_event_id.
create table if not exists raw.email_events (
    sg_event_id     varchar     primary key,  -- SendGrid retries for 24 h: dedupe here
    event           varchar     not null,     -- processed, delivered, open, click, bounce, ...
    email           varchar,
    send_id         varchar,                  -- from custom_args, ties back to messaging.sends
    sg_message_id   varchar,
    occurred_at     timestamptz not null,     -- the event's `timestamp` (epoch seconds)
    reason          varchar,                  -- bounce/dropped reason, when given
    payload         json        not null,     -- the event as received
    source_file     varchar     not null,
    ingested_at     timestamptz not null
);
