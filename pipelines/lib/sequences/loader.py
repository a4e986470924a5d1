"""Read `sequences/*.yaml` into validated `Sequence` models, collecting every problem at once.

A reviewer fixing a sequence file wants the whole list in one run, not one error per attempt, so
nothing here stops at the first problem: each file is parsed, validated by pydantic and checked
against its references (segment, flag, templates, conditions) on the raw data, then duplicates
are checked across files. Every problem carries the file and the line of the offending key.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from pipelines.lib.sequences.conditions import condition_problems
from pipelines.lib.sequences.models import SEGMENTS, Sequence, fields_at
from pipelines.lib.sequences.yaml_lines import (
    LocatedYaml,
    YamlSyntaxError,
    dotted_path,
    load_yaml_with_lines,
)
from pipelines.lib.yaml_limits import YamlTooLargeError, read_yaml_bytes

TEMPLATE_PARTS = ("subject", "html", "txt")
TEMPLATES_DIR = "templates"
CONDITION_PATHS: tuple[tuple[str, ...], ...] = (("audience", "condition"), ("goal", "condition"))


@dataclass(frozen=True, order=True)
class Problem:
    """One finding, shown as `path:line: message`."""

    path: str
    line: int
    message: str

    def __str__(self) -> str:
        return f"{self.path}:{self.line}: {self.message}"


class SequenceError(ValueError):
    """The sequences folder has problems; `errors` holds every one as `path:line: message`."""

    def __init__(self, errors: list[str]) -> None:
        super().__init__(f"{len(errors)} problem(s) in sequences:\n" + "\n".join(errors))
        self.errors = errors


@dataclass(frozen=True)
class _ParsedFile:
    path: str
    located: LocatedYaml | None
    sequence: Sequence | None


def display_path(path: Path) -> str:
    """`path` relative to the working directory when it is below it, else absolute."""
    absolute = path.absolute()
    try:
        return str(absolute.relative_to(Path.cwd()))
    except ValueError:
        return str(absolute)


def sequence_files(folder: Path) -> list[Path]:
    """The sequence files of `folder`, in a stable order (templates/ is not scanned)."""
    return sorted(p for p in folder.iterdir() if p.is_file() and p.suffix in {".yaml", ".yml"})


def template_files(folder: Path, template: str) -> dict[str, Path]:
    """The three files of a step's template: part name -> path under `folder`/templates."""
    return {part: folder / TEMPLATES_DIR / f"{template}.{part}.j2" for part in TEMPLATE_PARTS}


def load_sequences(folder: Path) -> list[Sequence]:
    """Every sequence in `folder`, ordered by priority; raises SequenceError listing all problems.

    Checks what needs no outside knowledge: YAML, fields and types, ids, segments, condition
    structure and template files. Flags and column names are checked by `check_sequences`.
    """
    sequences, problems = read_sequences(folder)
    if problems:
        raise SequenceError([str(problem) for problem in problems])
    return sequences


def read_sequences(
    folder: Path,
    *,
    segments: Iterable[str] = SEGMENTS,
    flag_keys: set[str] | None = None,
    columns: set[str] | None = None,
) -> tuple[list[Sequence], list[Problem]]:
    """Parse and check every file; (valid sequences by priority, every problem sorted by place).

    `flag_keys` / `columns` None skip those checks (the loader alone has neither).
    """
    if not folder.is_dir():
        return [], [Problem(display_path(folder), 1, "sequences folder not found")]
    segment_set = set(segments)
    parsed: list[_ParsedFile] = []
    problems: list[Problem] = []
    for file in sequence_files(folder):
        path = display_path(file)
        located, sequence, found = _read_file(file, path)
        parsed.append(_ParsedFile(path, located, sequence))
        problems.extend(Problem(path, line, message) for line, message in found)
        if located is not None and isinstance(located.data, dict):
            found = _reference_problems(located, folder, segment_set, flag_keys, columns)
            problems.extend(Problem(path, line, message) for line, message in found)
    problems.extend(_duplicate_problems(parsed))
    sequences = [item.sequence for item in parsed if item.sequence is not None]
    # Sorted by (path, line) so the report reads top to bottom, file by file.
    return sorted(sequences, key=lambda s: (s.priority, s.id)), sorted(set(problems))


def _read_file(
    file: Path, path: str
) -> tuple[LocatedYaml | None, Sequence | None, list[tuple[int, str]]]:
    try:
        located = load_yaml_with_lines(read_yaml_bytes(file).decode("utf-8"))
    except YamlSyntaxError as exc:
        return None, None, [(exc.line, exc.message)]
    except YamlTooLargeError as exc:
        return None, None, [(1, str(exc))]
    except (OSError, UnicodeDecodeError) as exc:
        return None, None, [(1, f"cannot read the file: {exc}")]
    problems: list[tuple[int, str]] = list(located.duplicate_keys)
    data = located.data
    if not isinstance(data, dict):
        return (
            located,
            None,
            [(1, "a sequence file must be a mapping (id:, audience:, steps: ...)")],
        )
    if "source_file" in data:
        problems.append((located.line_of(("source_file",)), "unknown field 'source_file'"))
        data = {key: value for key, value in data.items() if key != "source_file"}
    try:
        sequence = Sequence.model_validate({**data, "source_file": path})
    except ValidationError as exc:
        problems.extend(_pydantic_problems(exc, located))
        return located, None, problems
    return located, sequence, problems


def _pydantic_problems(exc: ValidationError, located: LocatedYaml) -> list[tuple[int, str]]:
    found: list[tuple[int, str]] = []
    for error in exc.errors():
        loc = tuple(error["loc"])
        kind = error["type"]
        if kind == "extra_forbidden":
            key = str(loc[-1])
            message = f"unknown field '{key}'"
            nearest = difflib.get_close_matches(key, fields_at(loc[:-1]), n=1)
            if nearest:
                message += f"; did you mean '{nearest[0]}'?"
        elif kind == "missing":
            # A missing key has no line of its own: point at the mapping that lacks it.
            message = f"missing required field '{dotted_path(loc)}'"
        else:
            text = str(error["msg"]).removeprefix("Value error, ")
            value = error.get("input")
            shown = f" (got {value!r})" if _is_scalar(value) and "(got" not in text else ""
            label = dotted_path(loc) if loc else "file"
            message = f"{label}: {text}{shown}"
        found.append((located.line_of(loc), message))
    return found


def _is_scalar(value: Any) -> bool:
    return isinstance(value, str | int | float | bool) or value is None


def _reference_problems(
    located: LocatedYaml,
    folder: Path,
    segments: set[str],
    flag_keys: set[str] | None,
    columns: set[str] | None,
) -> list[tuple[int, str]]:
    """Checks on the raw mapping, so they run even when pydantic rejected some other field."""
    data: dict[str, Any] = located.data
    found: list[tuple[int, str]] = []

    audience = data.get("audience")
    segment = audience.get("segment") if isinstance(audience, dict) else None
    if isinstance(segment, str) and segment not in segments:
        found.append(
            (
                located.line_of(("audience", "segment")),
                _unknown("segment", segment, segments, f"expected one of {', '.join(SEGMENTS)}"),
            )
        )

    flag = data.get("flag")
    if isinstance(flag, str) and flag_keys is not None and flag not in flag_keys:
        found.append(
            (located.line_of(("flag",)), _unknown("flag", flag, flag_keys, "not in flags.yaml"))
        )

    for path, text in _raw_conditions(data):
        for problem in condition_problems(text, columns):
            found.append((located.line_of(path), f"{dotted_path(path)}: {problem}"))

    steps = data.get("steps")
    seen_steps: dict[str, int] = {}
    for index, step in enumerate(steps if isinstance(steps, list) else []):
        if not isinstance(step, dict):
            continue
        step_id = step.get("id")
        if isinstance(step_id, str):
            line = located.line_of(("steps", index, "id"))
            if step_id in seen_steps:
                found.append(
                    (line, f"duplicate step id '{step_id}' (first at line {seen_steps[step_id]})")
                )
            seen_steps.setdefault(step_id, line)
        template = step.get("template")
        if isinstance(template, str) and ".." not in template and not template.startswith("/"):
            missing = [p for p in template_files(folder, template).values() if not p.is_file()]
            if missing:
                names = ", ".join(display_path(p) for p in missing)
                found.append(
                    (
                        located.line_of(("steps", index, "template")),
                        f"template '{template}' is missing {names}",
                    )
                )
    return found


def _raw_conditions(data: dict[str, Any]) -> list[tuple[tuple[str | int, ...], str]]:
    found: list[tuple[tuple[str | int, ...], str]] = []
    for parent, key in CONDITION_PATHS:
        section = data.get(parent)
        if isinstance(section, dict) and isinstance(section.get(key), str):
            found.append(((parent, key), section[key]))
    if isinstance(data.get("exit_when"), str):
        found.append((("exit_when",), data["exit_when"]))
    steps = data.get("steps")
    for index, step in enumerate(steps if isinstance(steps, list) else []):
        if isinstance(step, dict) and isinstance(step.get("when"), str):
            found.append((("steps", index, "when"), step["when"]))
    return found


def _unknown(kind: str, value: str, known: Iterable[str], hint: str) -> str:
    message = f"unknown {kind} '{value}'"
    nearest = difflib.get_close_matches(value, sorted(known), n=1)
    if nearest:
        return f"{message}; did you mean '{nearest[0]}'?"
    return f"{message} ({hint})"


def _duplicate_problems(parsed: list[_ParsedFile]) -> list[Problem]:
    """Sequence ids and priorities must be unique across files; the later file is blamed."""
    problems: list[Problem] = []
    for key, what in (("id", "sequence id"), ("priority", "priority")):
        first: dict[Any, tuple[str, int]] = {}
        for item in parsed:
            if item.located is None or not isinstance(item.located.data, dict):
                continue
            value = item.located.data.get(key)
            if not isinstance(value, str | int) or isinstance(value, bool):
                continue
            line = item.located.line_of((key,))
            if value in first:
                where = f"{first[value][0]}:{first[value][1]}"
                message = f"duplicate {what} {value!r} (also in {where})"
                if key == "priority":
                    message += "; priorities must be unique so one sequence wins"
                problems.append(Problem(item.path, line, message))
            else:
                first[value] = (item.path, line)
    return problems
