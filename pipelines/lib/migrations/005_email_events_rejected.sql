-- Webhook events that could not be loaded, kept with their reason (docs/architecture.md §12).
-- Mirrors raw.events_rejected, which is now for product events only.
create table if not exists raw.email_events_rejected (
    source_file    varchar     not null,
    line_number    bigint,               -- null for a fault of the whole file
    raw_record     varchar,              -- as received (bytes not UTF-8 as \xNN), cut at 64 KiB
    error_code     varchar     not null,
    error_message  varchar     not null,
    rejected_at    timestamptz not null
);

-- Webhook rejections written before this migration went to raw.events_rejected: move them.
insert into raw.email_events_rejected
    (source_file, line_number, raw_record, error_code, error_message, rejected_at)
select source_file, line_number, raw_record, error_code, error_message, rejected_at
from raw.events_rejected
where source_file in (select path from raw.ingested_files where file_format = 'email_events');

delete from raw.events_rejected
where source_file in (select path from raw.ingested_files where file_format = 'email_events');
