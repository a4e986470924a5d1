-- One row per (user, nurture segment) the user is in now. A user holds at most one nurture
-- segment (docs/architecture.md §5): the highest-priority rule they meet in int_user_segment_candidates.
with segment_candidates as (

    select * from {{ ref('int_user_segment_candidates') }}

),

ranked as (

    select
        user_id,
        segment,
        qualified_at,
        row_number() over (partition by user_id order by segment_priority) as priority_rank

    from segment_candidates

),

final as (

    select
        cast(user_id as varchar) as user_id,
        cast(segment as varchar) as segment,
        qualified_at

    from ranked
    where priority_rank = 1

)

select * from final
