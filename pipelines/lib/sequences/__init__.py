"""Sequences: YAML files that say who gets which email when, validated at load time.

The format is docs/architecture.md §6.

The planner uses `load_sequences` and `condition_sql`; `bis sequences check` uses
`check_sequences` with the flag keys and `known_columns` of the dbt project.
"""

from pipelines.lib.sequences.check import (
    TEMPLATE_GLOBALS,
    TEMPLATE_USER_FIELDS,
    check_sequences,
    known_columns,
)
from pipelines.lib.sequences.conditions import (
    ALLOWED_FUNCTIONS,
    ConditionError,
    condition_problems,
    condition_sql,
)
from pipelines.lib.sequences.loader import (
    TEMPLATE_PARTS,
    SequenceError,
    load_sequences,
    template_files,
)
from pipelines.lib.sequences.models import SEGMENTS, Audience, Goal, Sequence, Step

__all__ = [
    "ALLOWED_FUNCTIONS",
    "SEGMENTS",
    "TEMPLATE_GLOBALS",
    "TEMPLATE_PARTS",
    "TEMPLATE_USER_FIELDS",
    "Audience",
    "ConditionError",
    "Goal",
    "Sequence",
    "SequenceError",
    "Step",
    "check_sequences",
    "condition_problems",
    "condition_sql",
    "known_columns",
    "load_sequences",
    "template_files",
]
