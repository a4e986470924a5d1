-- Delivery, engagement and goal conversions of the messages planned per sequence, step, variant
-- and UTC day of planned_at, from the ledger, the SendGrid events tied to it by send_id, and
-- each message's enrollment outcome (int_sequence_enrollment_outcomes).
with sends as (

    select * from {{ ref('stg_messaging__sends') }}

),

email_events as (

    select * from {{ ref('stg_sendgrid__email_events') }}

),

enrollment_outcomes as (

    select * from {{ ref('int_sequence_enrollment_outcomes') }}

),

send_events as (

    select
        send_id,
        max(case when event = 'delivered' then 1 else 0 end) as is_delivered,
        max(case when event = 'open' then 1 else 0 end) as is_opened,
        max(case when event = 'click' then 1 else 0 end) as is_clicked,
        max(case when event = 'bounce' then 1 else 0 end) as is_bounced,
        max(case when event in ('unsubscribe', 'group_unsubscribe') then 1 else 0 end) as is_unsubscribed,
        max(case when event = 'spamreport' then 1 else 0 end) as is_spam_reported

    from email_events
    where send_id is not null
    group by send_id

),

sends_with_events as (

    select
        sends.sequence_id,
        sends.step_id,
        sends.variant,
        sends.planned_date,
        case when sends.is_sent then 1 else 0 end as is_sent,
        coalesce(send_events.is_delivered, 0) as is_delivered,
        coalesce(send_events.is_opened, 0) as is_opened,
        coalesce(send_events.is_clicked, 0) as is_clicked,
        coalesce(send_events.is_bounced, 0) as is_bounced,
        coalesce(send_events.is_unsubscribed, 0) as is_unsubscribed,
        coalesce(send_events.is_spam_reported, 0) as is_spam_reported,
        case when enrollment_outcomes.is_converted then 1 else 0 end as is_converted

    from sends
    left join send_events on sends.send_id = send_events.send_id
    left join enrollment_outcomes
        on sends.sequence_id = enrollment_outcomes.sequence_id
        and sends.user_id = enrollment_outcomes.user_id
        and sends.enrollment_key = enrollment_outcomes.enrollment_key

),

counts as (

    select
        sequence_id,
        step_id,
        variant,
        planned_date,
        cast(count(*) as bigint) as planned_sends,
        cast(sum(is_sent) as bigint) as sent_sends,
        cast(sum(is_delivered) as bigint) as delivered_sends,
        cast(sum(is_opened) as bigint) as unique_opens,
        cast(sum(is_clicked) as bigint) as unique_clicks,
        cast(sum(is_bounced) as bigint) as bounces,
        cast(sum(is_unsubscribed) as bigint) as unsubscribes,
        cast(sum(is_spam_reported) as bigint) as spam_reports,
        cast(sum(is_converted) as bigint) as conversions

    from sends_with_events
    group by sequence_id, step_id, variant, planned_date

),

final as (

    select
        cast(sequence_id as varchar) as sequence_id,
        cast(step_id as varchar) as step_id,
        cast(variant as varchar) as variant,
        planned_date,
        planned_sends,
        sent_sends,
        delivered_sends,
        unique_opens,
        unique_clicks,
        bounces,
        unsubscribes,
        spam_reports,
        conversions,
        cast(sent_sends as float8) / nullif(planned_sends, 0) as send_rate,
        cast(delivered_sends as float8) / nullif(sent_sends, 0) as delivery_rate,
        cast(unique_opens as float8) / nullif(delivered_sends, 0) as open_rate,
        cast(unique_clicks as float8) / nullif(delivered_sends, 0) as click_rate,
        cast(unique_clicks as float8) / nullif(unique_opens, 0) as click_to_open_rate,
        cast(bounces as float8) / nullif(sent_sends, 0) as bounce_rate,
        cast(unsubscribes as float8) / nullif(delivered_sends, 0) as unsubscribe_rate,
        cast(spam_reports as float8) / nullif(delivered_sends, 0) as spam_report_rate,
        cast(conversions as float8) / nullif(planned_sends, 0) as conversion_rate

    from counts

)

select * from final
