{#- Experiment settings read by int_sequence_enrollment_outcomes. Both are dbt vars that the
    pipeline passes from sequences/*.yaml; the defaults mirror those files (a test checks). -#}

{#- holdout_percent of each sequence (sequences/*.yaml `holdout_percent`): the design split the
    sample-ratio-mismatch check tests against. -#}
{% macro holdout_percent_by_sequence() -%}
    {{ return(var('holdout_percent_by_sequence', {
        'declining_engagement': 10,
        'dormant_reactivation': 10,
        'lapsed_winback': 10,
        'never_started_kickoff': 10,
        'onboarding_momentum': 10,
        'stalled_onboarding': 10,
    })) }}
{%- endmacro %}

{#- The conversion goal of each sequence and how it is timed (int_sequence_enrollment_outcomes):
      onboarding_completed  "steps_completed = 4": dim_users.last_step_at when all four are done
      onboarding_started    "steps_completed >= 1": the earliest step_k_at
      activity              a condition over events_last_7d, events_prev_7d and is_inactive (the
                            SQL of the YAML goal), checked at every tracked event in the window
    The pipeline passes these from sequences/*.yaml (pipelines/lib/sequences/goals.py); the
    defaults serve a plain `dbt build`, and a test keeps them equal to the files. -#}
{% macro sequence_goals() -%}
    {{ return(var('sequence_goals', {
        'declining_engagement': {'goal': 'activity', 'condition': '(events_last_7d >= events_prev_7d)', 'within_days': 14},
        'dormant_reactivation': {'goal': 'activity', 'condition': '(events_last_7d >= 3)', 'within_days': 14},
        'lapsed_winback': {'goal': 'activity', 'condition': '(NOT is_inactive)', 'within_days': 30},
        'never_started_kickoff': {'goal': 'onboarding_started', 'within_days': 7},
        'onboarding_momentum': {'goal': 'onboarding_completed', 'within_days': 14},
        'stalled_onboarding': {'goal': 'onboarding_completed', 'within_days': 14},
    })) }}
{%- endmacro %}
