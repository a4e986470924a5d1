-- dim_users.nurture_segment and user_segments describe the same segment for every user.
with users as (

    select * from {{ ref('dim_users') }}

),

user_segments as (

    select * from {{ ref('user_segments') }}

)

select
    users.user_id,
    users.nurture_segment,
    user_segments.segment

from users
full outer join user_segments on users.user_id = user_segments.user_id
where users.user_id is null
   or coalesce(users.nurture_segment, '') <> coalesce(user_segments.segment, '')
