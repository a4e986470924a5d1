"""Flag definitions as validated data: one `Flag` per key, one `EnvSetting` per environment.

Validation messages are written for the person editing `flags/flags.yaml`; the loader in
`store.py` prefixes them with `path:line:`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    ValidationError,
    ValidatorFunctionWrapHandler,
    field_validator,
    model_validator,
)
from pydantic_core import InitErrorDetails, PydanticCustomError

from pipelines.lib.settings import ENVIRONMENTS

FlagState = Literal["off", "admins", "rollout", "on"]
# Ordered from narrowest to widest audience; `store.set_flag_state` uses the order to spot
# changes that take email away from users who are already getting it.
STATES: tuple[FlagState, ...] = ("off", "admins", "rollout", "on")
KILL_SWITCH = "messaging"
# Flag keys become Dagster config field names and ledger values, so keep them identifiers.
_KEY_PATTERN = re.compile(r"^[a-z][a-z0-9_]*$")


class FlagError(ValueError):
    """One or more problems with flags; each problem is one line (`path:line: message`)."""

    def __init__(self, problems: list[str] | str) -> None:
        self.problems = [problems] if isinstance(problems, str) else list(problems)
        super().__init__("\n".join(self.problems))


class EnvSetting(BaseModel):
    """The state of one flag in one environment."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    state: FlagState
    percent: int | None = None

    @field_validator("state", mode="before")
    @classmethod
    def _known_state(cls, value: Any) -> Any:
        if value not in STATES:
            shown = str(value).lower() if isinstance(value, bool) else repr(value)
            raise ValueError(f"unknown state {shown} (expected one of {', '.join(STATES)})")
        return value

    @field_validator("percent", mode="before")
    @classmethod
    def _whole_percent(cls, value: Any) -> Any:
        # bool is an int subclass; `percent: yes` must not quietly become 1.
        if value is None:
            return None
        if isinstance(value, bool) or not isinstance(value, int):
            raise ValueError(f"percent must be a whole number from 0 to 100, got {value!r}")
        if not 0 <= value <= 100:
            raise ValueError(f"percent {value} is outside 0-100")
        return value

    @model_validator(mode="after")
    def _percent_iff_rollout(self) -> EnvSetting:
        if self.state == "rollout" and self.percent is None:
            raise ValueError("state rollout needs a percent (0-100)")
        if self.state != "rollout" and self.percent is not None:
            raise ValueError(f"percent only applies to state rollout, not {self.state}")
        return self

    def describe(self) -> str:
        return f"rollout {self.percent}%" if self.state == "rollout" else self.state


class Flag(BaseModel):
    """A flag and its state in every environment."""

    # Ids in YAML may be written bare (`[1042]`); user ids are strings everywhere else.
    model_config = ConfigDict(extra="forbid", frozen=True, coerce_numbers_to_str=True)

    key: str
    description: str
    admin_user_ids: list[str] = []
    environments: dict[str, EnvSetting]

    @field_validator("key")
    @classmethod
    def _identifier_key(cls, value: str) -> str:
        if not _KEY_PATTERN.match(value):
            raise ValueError(f"flag key {value!r} must be lower_snake_case")
        return value

    @field_validator("description")
    @classmethod
    def _has_description(cls, value: str) -> str:
        if not value.strip():
            raise ValueError("description must not be empty")
        return value

    @field_validator("environments", mode="wrap")
    @classmethod
    def _every_environment(
        cls, value: Any, handler: ValidatorFunctionWrapHandler
    ) -> dict[str, EnvSetting]:
        # Wrap rather than "after" so a missing or misspelt environment (`prd` would leave
        # prod silently unset) is reported together with problems inside the others.
        problems: list[InitErrorDetails] = []
        if isinstance(value, dict):
            problems += [
                _problem(
                    f"unknown environment {name!r} (expected {', '.join(ENVIRONMENTS)})",
                    (name,),
                    value,
                )
                for name in value
                if name not in ENVIRONMENTS
            ]
            problems += [
                _problem(
                    f"missing environment {name} (every flag needs {', '.join(ENVIRONMENTS)})",
                    (),
                    value,
                )
                for name in ENVIRONMENTS
                if name not in value
            ]
        try:
            result = handler(value)
        except ValidationError as exc:
            if not problems:
                raise
            inner = [_problem(e["msg"], e["loc"], e["input"]) for e in exc.errors()]
            raise ValidationError.from_exception_data("environments", inner + problems) from None
        if problems:
            raise ValidationError.from_exception_data("environments", problems)
        return result


def _problem(message: str, loc: tuple, value: Any) -> InitErrorDetails:
    # "{message}" as the template keeps braces in the message from being formatted.
    return InitErrorDetails(
        type=PydanticCustomError("flag_problem", "{message}", {"message": message}),
        loc=loc,
        input=value,
    )


@dataclass(frozen=True)
class FlagSet:
    """Every flag in `flags.yaml`, in file order."""

    flags: dict[str, Flag]
    path: Path | None = field(default=None, compare=False)

    def flag(self, key: str) -> Flag:
        if key not in self.flags:
            raise FlagError(f"unknown flag {key!r} (known flags: {', '.join(self.flags)})")
        return self.flags[key]

    def setting(self, key: str, env: str) -> EnvSetting:
        flag = self.flag(key)
        if env not in flag.environments:
            known = ", ".join(flag.environments)
            raise FlagError(f"unknown environment {env!r} (known environments: {known})")
        return flag.environments[env]


def flag_config_defaults(flags: FlagSet, env: str) -> dict[str, dict]:
    """`{key: {"state": ..., "percent": ...}}` for `env`: the defaults of the plan's Config."""
    return {
        key: {"state": setting.state, "percent": setting.percent}
        for key in flags.flags
        for setting in [flags.setting(key, env)]
    }
