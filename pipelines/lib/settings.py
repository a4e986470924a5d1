"""The configuration: every `BIS_*` and `SENDGRID_*` variable, parsed and validated here only.

No other module under `pipelines/` or `bench/` reads the process environment: they take a
`Settings` (from `load_settings()`) or call one of the small readers below. A bad value fails
with the variable's name and the value (a secret's value is never shown). Secrets are
`pydantic.SecretStr`, whose repr and str are `**********`.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import TypeVar

from pydantic import SecretStr

from pipelines.lib.engine.url import WarehouseUrl, duckdb_url, parse_warehouse_url

ENVIRONMENTS = ("dev", "staging", "prod")
SENDERS = ("outbox", "sendgrid")
PROJECT_ROOT = Path(__file__).resolve().parents[2]
SEQUENCES_DIR = PROJECT_ROOT / "sequences"
TEMPLATES_DIR = SEQUENCES_DIR / "templates"
FLAGS_FILE = PROJECT_ROOT / "flags" / "flags.yaml"
DOTENV_FILE = ".env"
DEFAULT_DAGSTER_HOME = PROJECT_ROOT / ".dagster_home"  # the Makefile's DAGSTER_HOME

# DuckDB's own default takes 80% of the machine's memory; the pipeline promises a few GiB.
# dbt's profiles read the same variable, so every process holding the warehouse stays bounded.
DEFAULT_MEMORY_LIMIT = "3GB"
DEFAULT_WAIT_SECONDS = 600.0
DEFAULT_SENDGRID_HOST = "https://api.sendgrid.com"
DEFAULT_FROM_NAME = "BIS"
# A variable whose name holds one of these is a secret: never printed, scrubbed from output.
SECRET_MARKERS = ("KEY", "SECRET", "TOKEN", "PASSWORD")
_TRUE = ("1", "true", "yes")
_FALSE = ("0", "false", "no")
# DuckDB's memory_limit: a number and a unit (3GB, 500MiB, 1.5GB, 3G) or a share (80%).
_MEMORY = re.compile(r"^\d+(\.\d+)?\s*(%|b|bytes|[kmgt]i?b?)$", re.IGNORECASE)

T = TypeVar("T")


class SettingsError(ValueError):
    """A variable is missing or has a value this system cannot use; the message names it."""


def is_secret(name: str) -> bool:
    upper = name.upper()
    return any(marker in upper for marker in SECRET_MARKERS)


@dataclass(frozen=True)
class Settings:
    env: str
    data_dir: Path
    # Outside dev a pipeline clock more than 15 minutes ahead of the machine's is refused
    # unless this is set (`BIS_ALLOW_FUTURE_CLOCK=1` or `--allow-future-clock`).
    allow_future_clock: bool = False
    as_of: datetime | None = None  # BIS_AS_OF; None: the current time
    # BIS_WAREHOUSE_URL; left out (None), it is DuckDB at <data_dir>/warehouse.duckdb.
    warehouse: WarehouseUrl = field(default=None)  # type: ignore[assignment]
    duckdb_memory_limit: str = DEFAULT_MEMORY_LIMIT
    warehouse_wait_seconds: float = DEFAULT_WAIT_SECONDS
    email_sender: str | None = None  # None: outbox in dev, sendgrid elsewhere
    # The sender identity; None: the demo identity (dev only: outside dev they are required).
    from_email: str | None = None
    from_name: str = DEFAULT_FROM_NAME
    unsubscribe_url: str | None = None
    postal_address: str | None = None
    app_url: str | None = None
    sendgrid_api_key: SecretStr | None = None
    sendgrid_host: str = DEFAULT_SENDGRID_HOST
    sendgrid_sandbox: bool | None = None  # None: sandbox in staging only
    sendgrid_webhook_public_key: str | None = None
    dagster_home: Path | None = None

    def __post_init__(self) -> None:
        if self.warehouse is None:
            object.__setattr__(self, "warehouse", duckdb_url(self.data_dir / "warehouse.duckdb"))

    @property
    def landing_events_dir(self) -> Path:
        return self.data_dir / "landing" / "events"

    @property
    def landing_email_events_dir(self) -> Path:
        return self.data_dir / "landing" / "email_events"

    @property
    def warehouse_path(self) -> Path:
        """The DuckDB warehouse file (a PostgreSQL warehouse has none: a clear error)."""
        if self.warehouse.path is None:
            raise SettingsError(
                f"BIS_WAREHOUSE_URL={self.warehouse.display()}: this needs a DuckDB warehouse"
                " file, not a PostgreSQL server"
            )
        return self.warehouse.path

    @property
    def outbox_dir(self) -> Path:
        return self.data_dir / "outbox"

    @property
    def reports_dir(self) -> Path:
        return self.data_dir / "reports"

    @property
    def sender_kind(self) -> str:
        """The one choice of sender: `BIS_EMAIL_SENDER`, else outbox in dev, sendgrid elsewhere."""
        if self.email_sender:
            return self.email_sender
        return "outbox" if self.env == "dev" else "sendgrid"

    @property
    def use_sandbox(self) -> bool:
        """SendGrid's sandbox mode: `SENDGRID_SANDBOX`, else on in staging only."""
        return self.env == "staging" if self.sendgrid_sandbox is None else self.sendgrid_sandbox

    def sender_variables(self) -> dict[str, str]:
        """The sender's variables that are set, as text (the API key revealed): for checks
        that name what is missing. Never print it: pass output through `scrub_secrets`."""
        values = {
            "BIS_EMAIL_SENDER": self.email_sender,
            "SENDGRID_API_KEY": (
                self.sendgrid_api_key.get_secret_value() if self.sendgrid_api_key else None
            ),
            "BIS_FROM_EMAIL": self.from_email,
            "BIS_UNSUBSCRIBE_URL": self.unsubscribe_url,
            "BIS_POSTAL_ADDRESS": self.postal_address,
            "BIS_APP_URL": self.app_url,
            "SENDGRID_WEBHOOK_PUBLIC_KEY": self.sendgrid_webhook_public_key,
        }
        return {name: value for name, value in values.items() if value}

    def secrets(self) -> list[str]:
        """Secret values these settings hold (the API key, a warehouse password)."""
        found = [self.sendgrid_api_key.get_secret_value()] if self.sendgrid_api_key else []
        if self.warehouse.password:
            found.append(self.warehouse.password)
        return found


# --- reading one variable ---------------------------------------------------------------------


def _source(environ: Mapping[str, str] | None) -> Mapping[str, str]:
    return os.environ if environ is None else environ


def _text(environ: Mapping[str, str], name: str) -> str:
    return environ.get(name, "").strip()


def _shown(name: str, text: str) -> str:
    return "<redacted>" if is_secret(name) else repr(text)


def _parse(environ: Mapping[str, str], name: str, parse: Callable[[str], T], default: T) -> T:
    """`parse` of the variable's text (blank or unset: `default`); its ValueError becomes a
    SettingsError naming the variable and the value (a secret's value hidden)."""
    text = _text(environ, name)
    if not text:
        return default
    try:
        return parse(text)
    except ValueError as exc:
        raise SettingsError(f"{name}={_shown(name, text)}: {exc}") from None


def _choice(options: tuple[str, ...]) -> Callable[[str], str]:
    def parse(text: str) -> str:
        if text not in options:
            raise ValueError(f"not one of {', '.join(options)}")
        return text

    return parse


def _flag(text: str) -> bool:
    lowered = text.lower()
    if lowered not in _TRUE + _FALSE:
        raise ValueError("not one of 1, 0 (or true, false)")
    return lowered in _TRUE


def _seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise ValueError("not a number of seconds") from None
    if not value >= 0:  # also refuses NaN
        raise ValueError("must be zero or more seconds")
    return value


def _memory(text: str) -> str:
    if not _MEMORY.match(text):
        raise ValueError("not a DuckDB memory limit (e.g. 3GB, 500MiB or 80%)")
    return text


def _url(text: str) -> str:
    if not text.startswith(("https://", "http://")):
        raise ValueError("not an http(s) URL")
    return text


def _timestamp(text: str) -> datetime:
    from pipelines.lib.clock import parse_timestamp

    return parse_timestamp(text)


def env_as_of(environ: Mapping[str, str] | None = None) -> datetime | None:
    """`BIS_AS_OF` (None when unset): the pipeline clock's override."""
    return _parse(_source(environ), "BIS_AS_OF", _timestamp, None)


def warehouse_wait_seconds(environ: Mapping[str, str] | None = None) -> float:
    """`BIS_WAREHOUSE_WAIT`: how long a writer waits for the warehouse (default 600 s)."""
    return _parse(_source(environ), "BIS_WAREHOUSE_WAIT", _seconds, DEFAULT_WAIT_SECONDS)


def duckdb_memory_limit(environ: Mapping[str, str] | None = None) -> str:
    """`BIS_DUCKDB_MEMORY_LIMIT` (default 3GB)."""
    return _parse(_source(environ), "BIS_DUCKDB_MEMORY_LIMIT", _memory, DEFAULT_MEMORY_LIMIT)


def is_set(name: str, environ: Mapping[str, str] | None = None) -> bool:
    """Whether `name` is set to something other than blanks (for Dagster's dg.EnvVar, which
    fails a run when its variable is unset)."""
    return bool(_text(_source(environ), name))


# --- everything at once ---------------------------------------------------------------------


def load_settings(
    environ: Mapping[str, str] | None = None, *, overrides: Mapping[str, str] | None = None
) -> Settings:
    """The settings from `environ` (default: the process environment) with `overrides` (e.g.
    a Dagster resource's configuration) on top. Defaults: dev, ./data from the working dir.
    Outside dev `BIS_WAREHOUSE_URL` is required: a production warehouse is never implied."""
    source: Mapping[str, str] = {**_source(environ), **(overrides or {})}
    env = _parse(source, "BIS_ENV", _choice(ENVIRONMENTS), "dev")
    data_dir = Path(_text(source, "BIS_DATA_DIR") or "data").resolve()
    url_text = _text(source, "BIS_WAREHOUSE_URL")
    # Its errors name the variable and hide a password themselves.
    warehouse = parse_warehouse_url(url_text, base_dir=Path.cwd()) if url_text else None
    if warehouse is None and env != "dev":
        raise SettingsError(
            f"BIS_WAREHOUSE_URL is not set: BIS_ENV={env} needs it (e.g."
            " duckdb:///srv/bis/warehouse.duckdb or postgresql://user:password@host:5432/bis);"
            " only dev defaults to $BIS_DATA_DIR/warehouse.duckdb"
        )
    api_key = _text(source, "SENDGRID_API_KEY")
    public_key = _text(source, "SENDGRID_WEBHOOK_PUBLIC_KEY")
    home = _text(source, "DAGSTER_HOME")
    return Settings(
        env=env,
        data_dir=data_dir,
        allow_future_clock=_parse(source, "BIS_ALLOW_FUTURE_CLOCK", _flag, False),
        as_of=env_as_of(source),
        warehouse=warehouse or duckdb_url(data_dir / "warehouse.duckdb"),
        duckdb_memory_limit=duckdb_memory_limit(source),
        warehouse_wait_seconds=warehouse_wait_seconds(source),
        email_sender=_parse(source, "BIS_EMAIL_SENDER", _choice(SENDERS), None),
        from_email=_text(source, "BIS_FROM_EMAIL") or None,
        from_name=_text(source, "BIS_FROM_NAME") or DEFAULT_FROM_NAME,
        unsubscribe_url=_parse(source, "BIS_UNSUBSCRIBE_URL", _url, None),
        postal_address=_text(source, "BIS_POSTAL_ADDRESS") or None,
        app_url=_parse(source, "BIS_APP_URL", _url, None),
        sendgrid_api_key=SecretStr(api_key) if api_key else None,
        sendgrid_host=_parse(source, "SENDGRID_HOST", _url, DEFAULT_SENDGRID_HOST),
        sendgrid_sandbox=_parse(source, "SENDGRID_SANDBOX", _flag, None),
        sendgrid_webhook_public_key=public_key or None,
        # `make ui` keeps the instance in the project's .dagster_home: found without an export.
        dagster_home=Path(home).resolve() if home else DEFAULT_DAGSTER_HOME,
    )


def secret_values(environ: Mapping[str, str] | None = None) -> list[str]:
    """Values of every secret-named variable in the environment: a last line of defence for
    text we do not control (an error message that echoes a pasted key)."""
    return [value.strip() for name, value in _source(environ).items() if is_secret(name)]


# --- the environment of other processes -------------------------------------------------------


def read_dotenv(directory: Path | None = None) -> dict[str, str]:
    """Load `.env` from `directory` (default: the working directory) into the process
    environment for the `bis` command; variables already set win. Returns what it set."""
    from dotenv import dotenv_values

    path = (directory or Path.cwd()) / DOTENV_FILE
    if not path.is_file():
        return {}
    loaded = {
        name: value
        for name, value in dotenv_values(path).items()
        if value is not None and name not in os.environ
    }
    os.environ.update(loaded)
    return loaded


def subprocess_environ(
    extra: Mapping[str, str] | None = None, *, without: tuple[str, ...] = ()
) -> dict[str, str]:
    """The environment for a child process: this one's, less `without`, plus `extra`."""
    environ = {name: value for name, value in os.environ.items() if name not in without}
    environ.update(extra or {})
    return environ


@contextmanager
def temporary_environ(values: Mapping[str, str]) -> Iterator[None]:
    """`values` set in this process's environment for the block only (for a library that
    starts its subprocess with the current environment and has no other way in)."""
    previous = {name: os.environ.get(name) for name in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for name, value in previous.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


def set_process_environ(values: Mapping[str, str]) -> None:
    """Set `values` for this process and its children for good (a benchmark stage that runs
    Dagster in process, which reads the settings at run time)."""
    os.environ.update(values)
