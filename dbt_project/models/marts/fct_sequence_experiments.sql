-- Holdout experiments per sequence and overall: intention-to-treat conversion of treatment vs
-- holdout users, lift with a Newcombe hybrid-score 95% interval, a pooled two-proportion
-- z-test, and a sample-ratio-mismatch chi-square against the sequence's holdout_percent.
{%- set z = z_975() %}
with enrollment_outcomes as (

    select * from {{ ref('int_sequence_enrollment_outcomes') }}

),

numbered_enrollments as (

    select
        sequence_id,
        user_id,
        variant,
        holdout_percent,
        case when is_converted then 1 else 0 end as is_converted,
        row_number() over (
            partition by sequence_id, user_id
            order by enrollment_key, planned_at
        ) as enrollment_number

    from enrollment_outcomes

),

-- The unit is (sequence, user): the arm of the user's first enrollment (assignment is sticky
-- per sequence and user, so this only matters if holdout_percent changed), converted when any
-- of the user's enrollments in the sequence converted.
sequence_users as (

    select
        sequence_id,
        user_id,
        max(case when enrollment_number = 1 then variant end) as variant,
        max(is_converted) as is_converted,
        max(holdout_percent) as holdout_percent

    from numbered_enrollments
    group by sequence_id, user_id

),

per_sequence as (

    select
        sequence_users.sequence_id,
        cast(sum(case when sequence_users.variant = 'treatment' then 1 else 0 end) as bigint) as treatment_users,
        cast(sum(case when sequence_users.variant = 'holdout' then 1 else 0 end) as bigint) as holdout_users,
        cast(sum(case when sequence_users.variant = 'treatment' then sequence_users.is_converted else 0 end) as bigint) as treatment_converted,
        cast(sum(case when sequence_users.variant = 'holdout' then sequence_users.is_converted else 0 end) as bigint) as holdout_converted,
        max(sequence_users.holdout_percent) as holdout_percent

    from sequence_users
    group by sequence_users.sequence_id

),

with_overall as (

    select
        sequence_id,
        treatment_users,
        holdout_users,
        treatment_converted,
        holdout_converted,
        holdout_percent,
        (treatment_users + holdout_users) * holdout_percent / 100.0 as expected_holdout_users

    from per_sequence

    union all

    select
        cast('__overall__' as varchar) as sequence_id,
        cast(sum(treatment_users) as bigint) as treatment_users,
        cast(sum(holdout_users) as bigint) as holdout_users,
        cast(sum(treatment_converted) as bigint) as treatment_converted,
        cast(sum(holdout_converted) as bigint) as holdout_converted,
        sum((treatment_users + holdout_users) * holdout_percent)
            / nullif(sum(treatment_users + holdout_users), 0) as holdout_percent,
        sum((treatment_users + holdout_users) * holdout_percent / 100.0) as expected_holdout_users

    from per_sequence
    having count(*) > 0

),

rates as (

    select
        *,
        cast(treatment_users as float8) as n_t,
        cast(holdout_users as float8) as n_h,
        cast(nullif(treatment_users, 0) as float8) as nz_t,
        cast(nullif(holdout_users, 0) as float8) as nz_h,
        cast(treatment_converted as float8) / nullif(treatment_users, 0) as p_t,
        cast(holdout_converted as float8) / nullif(holdout_users, 0) as p_h,
        cast(treatment_converted + holdout_converted as float8)
            / nullif(treatment_users + holdout_users, 0) as p_pooled,
        cast(treatment_users + holdout_users as float8) - expected_holdout_users as expected_treatment_users

    from with_overall

),

-- Wilson score interval of each arm's rate (the building block of Newcombe's method 10).
wilson as (

    select
        *,
        (p_t + {{ z }} * {{ z }} / (2.0 * nz_t)) / (1.0 + {{ z }} * {{ z }} / nz_t) as wilson_t_center,
        {{ z }} * sqrt(p_t * (1.0 - p_t) / nz_t + {{ z }} * {{ z }} / (4.0 * nz_t * nz_t))
            / (1.0 + {{ z }} * {{ z }} / nz_t) as wilson_t_half,
        (p_h + {{ z }} * {{ z }} / (2.0 * nz_h)) / (1.0 + {{ z }} * {{ z }} / nz_h) as wilson_h_center,
        {{ z }} * sqrt(p_h * (1.0 - p_h) / nz_h + {{ z }} * {{ z }} / (4.0 * nz_h * nz_h))
            / (1.0 + {{ z }} * {{ z }} / nz_h) as wilson_h_half,
        sqrt(p_pooled * (1.0 - p_pooled) * (1.0 / nullif(n_t, 0) + 1.0 / nullif(n_h, 0))) as pooled_se,
        case
            when expected_holdout_users > 0 and expected_treatment_users > 0 then
                (n_h - expected_holdout_users) * (n_h - expected_holdout_users) / expected_holdout_users
                + (n_t - expected_treatment_users) * (n_t - expected_treatment_users) / expected_treatment_users
        end as srm_chi_square

    from rates

),

statistics as (

    select
        *,
        p_t - p_h as absolute_lift,
        (p_t - p_h)
            - sqrt(
                (p_t - (wilson_t_center - wilson_t_half)) * (p_t - (wilson_t_center - wilson_t_half))
                + ((wilson_h_center + wilson_h_half) - p_h) * ((wilson_h_center + wilson_h_half) - p_h)
            ) as lift_ci_lower,
        (p_t - p_h)
            + sqrt(
                ((wilson_t_center + wilson_t_half) - p_t) * ((wilson_t_center + wilson_t_half) - p_t)
                + (p_h - (wilson_h_center - wilson_h_half)) * (p_h - (wilson_h_center - wilson_h_half))
            ) as lift_ci_upper,
        (p_t - p_h) / nullif(pooled_se, 0) as z_score,
        sqrt(srm_chi_square) as srm_z

    from wilson

),

final as (

    select
        cast(sequence_id as varchar) as sequence_id,
        cast(holdout_percent as float8) as holdout_percent,
        treatment_users,
        holdout_users,
        treatment_converted,
        holdout_converted,
        cast(p_t as float8) as treatment_conversion_rate,
        cast(p_h as float8) as holdout_conversion_rate,
        cast(absolute_lift as float8) as absolute_lift,
        cast(absolute_lift / nullif(p_h, 0) as float8) as relative_lift,
        cast(lift_ci_lower as float8) as lift_ci_lower,
        cast(lift_ci_upper as float8) as lift_ci_upper,
        cast('newcombe_hybrid_score' as varchar) as ci_method,
        cast(z_score as float8) as z_score,
        cast({{ normal_two_sided_p('z_score') }} as float8) as p_value,
        coalesce({{ normal_two_sided_p('z_score') }} < 0.05, false) as is_significant,
        cast(expected_holdout_users as float8) as srm_expected_holdout_users,
        cast(srm_chi_square as float8) as srm_chi_square,
        cast({{ normal_two_sided_p('srm_z') }} as float8) as srm_p_value,
        coalesce({{ normal_two_sided_p('srm_z') }} < 0.001, false) as srm_flag

    from statistics

)

select * from final
