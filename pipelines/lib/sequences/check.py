"""`bis sequences check`: every problem in the sequences folder as `path:line: message`.

On top of what the loader checks, this knows the outside world: flag keys, the mart columns the
conditions may use (read from the dbt model YAML, the contract the marts enforce) and what the
renderer gives templates, so a template that would fail at send time fails in review instead.
"""

from __future__ import annotations

import difflib
from pathlib import Path

import jinja2
import yaml
from jinja2 import nodes

from pipelines.lib.sequences.conditions import ConditionError
from pipelines.lib.sequences.goals import GoalError, measured_goal
from pipelines.lib.sequences.loader import (
    Problem,
    display_path,
    read_sequences,
    sequence_files,
    template_files,
)
from pipelines.lib.sequences.models import SEGMENTS, Sequence
from pipelines.lib.yaml_limits import YamlTooLargeError, read_yaml_bytes, safe_load

# The marts a condition is evaluated against (docs/architecture.md §6).
CONDITION_MODELS = ("dim_users", "user_progress")

# Exactly what the renderer (pipelines/lib/email/render.py) passes to every template; anything
# else is a typo that would only fail at send time. The footer uses the last two.
TEMPLATE_GLOBALS = frozenset({"user", "app_url", "unsubscribe_url", "postal_address"})
TEMPLATE_USER_FIELDS = frozenset(
    {
        "first_name",
        "name",
        "steps_completed",
        "next_step_name",
        "percent_complete",
        "current_streak_days",
        "active_days_last_7",
    }
)


def check_sequences(
    folder: Path,
    *,
    flag_keys: set[str],
    columns: set[str],
    segments: set[str] | tuple[str, ...] = SEGMENTS,
) -> list[str]:
    """Every problem as "path:line: message", sorted by file and line; [] when all is fine."""
    if folder.is_dir() and not sequence_files(folder):
        return [str(Problem(display_path(folder), 1, "no sequence files (*.yaml) found"))]
    sequences, problems = read_sequences(
        folder, segments=segments, flag_keys=flag_keys, columns=columns
    )
    problems.extend(template_problems(folder, sequences))
    problems.extend(goal_problems(sequences))
    return [str(problem) for problem in sorted(set(problems))]


def goal_problems(sequences: list[Sequence]) -> list[Problem]:
    """Goals the experiment marts cannot time, at the line of the file's `goal:` key."""
    problems = []
    for sequence in sequences:
        try:
            measured_goal(sequence)
        except ConditionError:
            continue  # an invalid condition is already reported where it is read
        except GoalError as exc:
            path = Path(sequence.source_file)
            lines = path.read_text(encoding="utf-8").splitlines() if path.exists() else []
            line = next((n for n, text in enumerate(lines, 1) if text.startswith("goal:")), 1)
            problems.append(Problem(sequence.source_file, line, str(exc)))
    return problems


def known_columns(dbt_project_dir: Path) -> set[str]:
    """Column names of the marts conditions may use, from `models/marts/*.yml` of the project.

    Raises ValueError when a model is not described there: checking against an empty list would
    flag every column, and checking nothing would let typos through; and, naming the file, when
    a file is not YAML or is over the limits of pipelines.lib.yaml_limits (e.g. an alias bomb).
    """
    found: dict[str, set[str]] = {}
    marts = dbt_project_dir / "models" / "marts"
    for file in sorted([*marts.glob("*.yml"), *marts.glob("*.yaml")]):
        try:
            document = safe_load(read_yaml_bytes(file).decode("utf-8")) or {}
        except (yaml.YAMLError, YamlTooLargeError, UnicodeDecodeError) as exc:
            raise ValueError(f"{display_path(file)}: cannot read the mart columns: {exc}") from None
        for model in document.get("models") or []:
            if isinstance(model, dict) and model.get("name") in CONDITION_MODELS:
                names = {c["name"] for c in model.get("columns") or [] if "name" in c}
                found.setdefault(model["name"], set()).update(names)
    missing = [name for name in CONDITION_MODELS if not found.get(name)]
    if missing:
        raise ValueError(f"no column list for {', '.join(missing)} in {marts}/*.yml")
    return set().union(*found.values())


def template_problems(folder: Path, sequences: list[Sequence]) -> list[Problem]:
    """Syntax and variable problems in the templates the sequences use (each file once)."""
    environment = jinja2.Environment(autoescape=True)
    problems: list[Problem] = []
    seen: set[Path] = set()
    for sequence in sequences:
        for step in sequence.steps:
            for part, file in template_files(folder, step.template).items():
                if file in seen or not file.is_file():
                    continue  # missing files are reported by the loader, at the step's line
                seen.add(file)
                path = display_path(file)
                found = _template_file_problems(environment, file.read_text("utf-8"), part)
                problems.extend(Problem(path, line, message) for line, message in found)
    return problems


def _template_file_problems(
    environment: jinja2.Environment, source: str, part: str
) -> list[tuple[int, str]]:
    try:
        tree = environment.parse(source)
    except jinja2.TemplateSyntaxError as exc:
        return [(exc.lineno or 1, f"template syntax error: {exc.message}")]
    found: list[tuple[int, str]] = []
    assigned = {n.name for n in tree.find_all(nodes.Name) if n.ctx in {"store", "param"}}
    allowed = TEMPLATE_GLOBALS | assigned | set(environment.globals)
    for name in tree.find_all(nodes.Name):
        if name.ctx == "load" and name.name not in allowed:
            found.append((name.lineno, _unknown_variable(name.name)))
    for node in tree.find_all((nodes.Getattr, nodes.Getitem)):
        target = node.node
        if not (isinstance(target, nodes.Name) and target.name == "user"):
            continue
        field = node.attr if isinstance(node, nodes.Getattr) else _constant(node.arg)
        if field is not None and field not in TEMPLATE_USER_FIELDS:
            message = f"unknown field 'user.{field}'"
            nearest = difflib.get_close_matches(field, sorted(TEMPLATE_USER_FIELDS), n=1)
            hint = f"; did you mean 'user.{nearest[0]}'?" if nearest else ""
            found.append((node.lineno, message + hint))
    if part == "subject" and "\n" in source.rstrip("\n"):
        found.append((2, "a subject template must be a single line"))
    if part == "subject" and not source.strip():
        found.append((1, "the subject template is empty"))
    if part == "html" and ("<html" in source.lower() or "<body" in source.lower()):
        found.append(
            (1, "html templates are fragments: the renderer adds the page, footer and unsubscribe")
        )
    return found


def _unknown_variable(name: str) -> str:
    allowed = sorted(TEMPLATE_GLOBALS)
    nearest = difflib.get_close_matches(name, allowed, n=1)
    hint = (
        f"; did you mean '{nearest[0]}'?" if nearest else f" (templates get {', '.join(allowed)})"
    )
    return f"unknown template variable '{name}'{hint}"


def _constant(node: nodes.Node) -> str | None:
    return node.value if isinstance(node, nodes.Const) and isinstance(node.value, str) else None
