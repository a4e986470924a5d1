-- Raw landing tables, written only by Python ingestion (dbt reads them as sources).
create schema if not exists raw;
create schema if not exists messaging;

create table if not exists raw.events (
    event_id      varchar     not null,  -- Segment messageId, else a content hash
    event_type    varchar     not null,  -- track | identify | page
    event_name    varchar,               -- track: event; page: name
    user_id       varchar,
    anonymous_id  varchar,
    occurred_at   timestamptz not null,  -- Segment timestamp
    received_at   timestamptz,
    properties    json,
    traits        json,
    context       json,
    source_file   varchar     not null,
    ingested_at   timestamptz not null
);

create table if not exists raw.events_rejected (
    source_file    varchar     not null,
    line_number    bigint,               -- null when the whole file was unreadable
    raw_record     varchar,              -- as received, truncated at 64 KiB
    error_code     varchar     not null,
    error_message  varchar     not null,
    rejected_at    timestamptz not null
);

create table if not exists raw.ingested_files (
    path            varchar     not null,
    sha256          varchar     not null,
    file_format     varchar     not null,
    size_bytes      bigint      not null,
    rows_read       bigint      not null,
    rows_loaded     bigint      not null,
    rows_rejected   bigint      not null,
    rows_duplicate  bigint      not null,
    ingested_at     timestamptz not null
);
