{#- Experiment settings read by fct_sequence_experiments. Both are dbt vars (override with
    --vars); the defaults mirror sequences/*.yaml. Keep them in step with those files. -#}

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

{#- The conversion goal of each sequence, as a timestamped event so that "within within_days of
    the enrollment key" can be decided from data (the YAML goal conditions are current-state
    predicates over dim_users). Goal kinds:
      onboarding_completed: the user's 4th onboarding step (dim_users.last_step_at when
                            steps_completed = 4)           ~ "steps_completed = 4"
      onboarding_started:   the user's first onboarding step (earliest step_k_at)
                                                            ~ "steps_completed >= 1"
      active:               the user's first track event (any track event is activity)
                            proxy for "not is_inactive", "events_last_7d >= 3" and
                            "events_last_7d >= events_prev_7d"
    A user converts for an enrollment when that moment is in
    [enrollment_key, enrollment_key + within_days]. -#}
{% macro sequence_goals() -%}
    {{ return(var('sequence_goals', {
        'declining_engagement': {'goal': 'active', 'within_days': 14},
        'dormant_reactivation': {'goal': 'active', 'within_days': 14},
        'lapsed_winback': {'goal': 'active', 'within_days': 30},
        'never_started_kickoff': {'goal': 'onboarding_started', 'within_days': 7},
        'onboarding_momentum': {'goal': 'onboarding_completed', 'within_days': 14},
        'stalled_onboarding': {'goal': 'onboarding_completed', 'within_days': 14},
    })) }}
{%- endmacro %}
