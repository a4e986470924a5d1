"""One SendGrid event, validated: the row `raw.email_events` gets, or why it cannot be loaded.

Every rule here exists so that no single event can make the load step raise (and with it
every later `bis send`): whatever is wrong with an event becomes a rejection code and a
message naming the field, checked in order, first failing rule wins (docs/architecture.md
§12, "Webhook events never halt sending"). `loads_strict` is shared with the webhook
receiver so both sides agree on what JSON is.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

# SendGrid events are flat objects (depth 1, or 2 with a category list); a batch adds one.
# The limit only has to stop pathological nesting well before Python's recursion limit.
MAX_JSON_DEPTH = 64
# One event is a few hundred bytes; SendGrid caps custom_args at 10,000 bytes. Larger lines
# are not SendGrid's and are kept (truncated) as rejections.
MAX_EVENT_BYTES = 64 * 1024
# Epoch seconds SendGrid can plausibly send. A fixed window (not "now"): a verified
# unsubscribe from a sender with a skewed clock must still suppress, and the rule must not
# depend on when the loader runs. Beyond it, datetime overflows or the value is garbage.
MIN_TIMESTAMP = int(datetime(2000, 1, 1, tzinfo=UTC).timestamp())
MAX_TIMESTAMP = int(datetime(2100, 1, 1, tzinfo=UTC).timestamp())

_SHOWN_CHARS = 40  # how much of an offending value an error message repeats


class JsonRejected(ValueError):
    """Text that is not acceptable JSON; `code` is the rejection code."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


def _reject_constant(name: str) -> None:
    # NaN and Infinity are not JSON (RFC 8259), though Python's parser accepts them.
    raise JsonRejected("invalid_json", f"{name} is not valid JSON")


_DECODER = json.JSONDecoder(parse_constant=_reject_constant)


def json_depth_exceeds(value: Any, limit: int) -> bool:
    """Whether `value` nests more than `limit` arrays/objects deep; iterative, so a deep
    value cannot exhaust the stack while being measured."""
    if not isinstance(value, dict | list):
        return False
    stack: list[tuple[Any, int]] = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if depth > limit:
            return True
        children = item.values() if isinstance(item, dict) else item
        stack.extend((child, depth + 1) for child in children if isinstance(child, dict | list))
    return False


def loads_strict(text: str, *, max_depth: int = MAX_JSON_DEPTH) -> Any:
    """Parse one JSON document; raise `JsonRejected` for anything that is not JSON (syntax,
    NaN/Infinity, trailing data) or nests deeper than `max_depth`. Never RecursionError."""
    try:
        value = _DECODER.decode(text)
    except RecursionError:
        # Python's parser recurses per level; far past max_depth anyway.
        raise JsonRejected(
            "too_deeply_nested", f"JSON nests deeper than {max_depth} levels"
        ) from None
    except json.JSONDecodeError as exc:
        raise JsonRejected(
            "invalid_json", f"not valid JSON: {exc.msg} at character {exc.pos}"
        ) from None
    except ValueError as exc:  # JsonRejected from a constant, or an integer too long to read
        if isinstance(exc, JsonRejected):
            raise
        raise JsonRejected("invalid_json", f"not valid JSON: {exc}") from None
    if json_depth_exceeds(value, max_depth):
        raise JsonRejected("too_deeply_nested", f"JSON nests deeper than {max_depth} levels")
    return value


@dataclass(frozen=True)
class EmailEvent:
    """The columns of raw.email_events that come from the event itself."""

    sg_event_id: str
    event: str
    email: str | None
    send_id: str | None
    sg_message_id: str | None
    occurred_at: datetime
    reason: str | None
    payload: str  # the event as JSON text, valid for DuckDB's json type


@dataclass(frozen=True)
class Rejection:
    code: str
    message: str


class _Bad(Exception):
    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


def _json_type(value: Any) -> str:
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int | float):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "an array"
    if isinstance(value, dict):
        return "an object"
    return "null"


def _shown(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= _SHOWN_CHARS else text[: _SHOWN_CHARS - 3] + "..."


def _text(event: dict[str, Any], name: str, *, label: str | None = None) -> str | None:
    """A string field or None; blank counts as absent. A wrong type is never coerced."""
    value = event.get(name)
    if value is not None and not isinstance(value, str):
        raise _Bad("wrong_field_type", f"{label or name} must be a string, not {_json_type(value)}")
    return value if value is not None and value.strip() else None


def _required_text(event: dict[str, Any], name: str) -> str:
    value = _text(event, name)
    if value is None:
        raise _Bad(f"missing_{name}", f"event has no {name}")
    return value


def _occurred_at(event: dict[str, Any]) -> datetime:
    value = event.get("timestamp")
    if value is None:
        raise _Bad("invalid_timestamp", "event has no timestamp")
    # bool is an int subclass in Python, but `true` is not a time.
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise _Bad(
            "invalid_timestamp",
            f"timestamp must be epoch seconds (a number), not {_json_type(value)}",
        )
    if not MIN_TIMESTAMP <= value < MAX_TIMESTAMP:  # also false for inf and nan
        raise _Bad(
            "timestamp_out_of_range",
            f"timestamp {_shown(value)} is outside 2000-01-01..2100-01-01 (epoch seconds)",
        )
    return datetime.fromtimestamp(value, UTC)


def _unrepresentable(value: Any) -> tuple[str, str] | None:
    """(where, what) for the first number or string in `value` that has no JSON text DuckDB
    accepts: a float that overflowed (1e400 reads as inf) or a lone surrogate escape
    ("\\ud800" is JSON grammar but no character). Iterative; depth is already bounded."""
    stack: list[tuple[str, Any]] = [("", value)]
    while stack:
        where, item = stack.pop()
        if isinstance(item, float) and not math.isfinite(item):
            return where or "the value", "a number too large to represent"
        if isinstance(item, str):
            try:
                item.encode("utf-8")
            except UnicodeEncodeError:
                return where or "the value", "a lone surrogate escape, which is no character"
        elif isinstance(item, dict):
            for key, child in reversed(list(item.items())):
                try:
                    key.encode("utf-8")
                except UnicodeEncodeError:
                    return f"{where}.{key}".lstrip("."), "a key with a lone surrogate escape"
                stack.append((f"{where}.{key}".lstrip("."), child))
        elif isinstance(item, list):
            stack.extend((f"{where}[{i}]", child) for i, child in reversed(list(enumerate(item))))
    return None


def _payload(value: Any) -> str:
    """The event as JSON text DuckDB accepts, or `_Bad` naming the field that has none."""
    problem = _unrepresentable(value)
    if problem is not None:
        where, what = problem
        # backslashreplace: the path itself may hold the surrogate.
        shown = where.encode("utf-8", errors="backslashreplace").decode("utf-8")
        raise _Bad("invalid_json", f"{shown[:_SHOWN_CHARS]} holds {what}")
    return json.dumps(value, ensure_ascii=False, allow_nan=False)


def parse_event(raw: bytes) -> EmailEvent | Rejection:
    """Validate one JSON Lines record (without its line break). Never raises."""
    if len(raw) > MAX_EVENT_BYTES:
        return Rejection(
            "record_too_large", f"event is {len(raw)} bytes, over the {MAX_EVENT_BYTES} limit"
        )
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        return Rejection("not_utf8", f"byte {exc.start} ({raw[exc.start]:#04x}) is not UTF-8")
    try:
        value = loads_strict(text)
    except JsonRejected as exc:
        return Rejection(exc.code, exc.message)
    try:
        payload = _payload(value)
        if not isinstance(value, dict):
            raise _Bad("not_an_object", f"an event must be a JSON object, not {_json_type(value)}")
        sg_event_id = _required_text(value, "sg_event_id")
        kind = _required_text(value, "event")
        email = _text(value, "email")
        occurred_at = _occurred_at(value)
        custom = value.get("custom_args")
        if custom is not None and not isinstance(custom, dict):
            raise _Bad(
                "wrong_field_type", f"custom_args must be an object, not {_json_type(custom)}"
            )
        # SendGrid flattens custom_args into the event; older payloads nest them.
        send_id = _text(value, "send_id")
        nested_send_id = _text(custom, "send_id", label="custom_args.send_id") if custom else None
        sg_message_id = _text(value, "sg_message_id")
        reason = _text(value, "reason")
        response = _text(value, "response")
    except _Bad as exc:
        return Rejection(exc.code, exc.message)
    return EmailEvent(
        sg_event_id=sg_event_id,
        event=kind,
        email=email,
        send_id=send_id or nested_send_id,
        sg_message_id=sg_message_id,
        occurred_at=occurred_at,
        reason=reason or response,
        payload=payload,
    )
