"""Jinja2 rendering of `sequences/templates/<name>.{subject,html,txt}.j2` plus the footer.

Two ways to render:

- `render(template, recipient)`: the final, fully personalised email (the outbox, previews).
- `render_for_batch(template, recipient)`: the same email with each personal value replaced
  by a SendGrid substitution token, plus that recipient's substitution values. Recipients
  whose tokenised renders are identical can share one request body (up to 1000 per call).
  Every tokenised render is *verified*: substituting the values back must give exactly what
  `render()` gives, otherwise the recipient gets a literal, fully rendered body of its own.
  So batching can never change what a user receives, whatever the template does with the
  values (filters, arithmetic, conditions).

Tokens: `str(token)` is `%user.first_name%` (subject and text, not escaped) and
`token.__html__()` is `%user.first_name_html%` (what autoescaped HTML asks for). The
substitution for the plain token is the raw value and for the html token the value escaped
exactly as Jinja would, so user data is escaped in HTML, raw in text, never escaped twice.
"""

from __future__ import annotations

import functools
import operator
import re
import types
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from numbers import Number
from pathlib import Path
from typing import Any

import jinja2
from markupsafe import escape

from pipelines.lib.email.headers import subject_text
from pipelines.lib.email.message import Recipient, RenderedEmail, SenderIdentity
from pipelines.lib.settings import PROJECT_ROOT

DEFAULT_TEMPLATES_DIR = PROJECT_ROOT / "sequences" / "templates"
PART_SUFFIXES = {"subject": ".subject.j2", "html": ".html.j2", "text": ".txt.j2"}
FOOTER_HTML = "_footer.html.j2"
FOOTER_TEXT = "_footer.txt.j2"
UNSUBSCRIBE_TOKEN_PATH = "unsubscribe_url"
_BODY_CLOSE = re.compile(r"</body\s*>", re.IGNORECASE)
_KEY_UNSAFE = re.compile(r"[^A-Za-z0-9_]")


class TemplateRenderError(ValueError):
    """A template is missing or fails to render; the message starts with `file[:line]:`."""

    def __init__(self, file: str, line: int | None, message: str) -> None:
        self.file = file
        self.line = line
        self.reason = message
        where = f"{file}:{line}" if line else file
        super().__init__(f"{where}: {message}")


class NotBatchableError(TemplateRenderError):
    """The template uses a personal value in a way a shared, tokenised body cannot express."""


@dataclass(frozen=True)
class BatchRender:
    """One recipient's share of a batched send.

    `email` is the body to send; recipients with equal `email` can share one request.
    `substitutions` maps token -> this recipient's value; empty when `email` is literal.
    """

    email: RenderedEmail
    substitutions: dict[str, str]


# --- tokens -------------------------------------------------------------------------------


def plain_token(path: str) -> str:
    return f"%{path}%"


def html_token(path: str) -> str:
    return f"%{path}_html%"


class _Token:
    """A placeholder for a personal value: prints as a SendGrid substitution tag.

    Without a value (`render_with_tokens(template)`) any use other than printing raises
    NotBatchableError, because the shared body could not know which branch to take.
    """

    __slots__ = ("_path", "_registry")

    def __init__(self, path: str, registry: set[str]) -> None:
        self._path = path
        self._registry = registry

    def __str__(self) -> str:
        token = plain_token(self._path)
        self._registry.add(token)
        return token

    def __html__(self) -> str:
        token = html_token(self._path)
        self._registry.add(token)
        return token

    def __repr__(self) -> str:
        return f"<token {self._path}>"


def _refuse(name: str) -> Callable[..., Any]:
    def method(self: _Token, *args: Any) -> Any:
        raise NotBatchableError(
            "<tokens>",
            None,
            f"`{self._path}` is used in an expression ({name}), not only printed;"
            " render per recipient or use render_for_batch()",
        )

    return method


class _ValueToken(_Token):
    """A placeholder that still behaves like its value in logic and arithmetic.

    Conditions, comparisons and maths see the real value, so a template can branch on
    `user.steps_completed`; only printing yields the token. Whatever the template does,
    `render_for_batch` verifies the result against a real render.
    """

    __slots__ = ("_value",)

    def __init__(self, path: str, registry: set[str], value: Any) -> None:
        super().__init__(path, registry)
        self._value = value

    def __getattr__(self, name: str) -> Any:
        # Only reached for names the token itself lacks: methods of the real value. Private
        # names never delegate (and `_value` unset, e.g. mid-copy, must not recurse).
        if name.startswith("_"):
            raise AttributeError(name)
        return getattr(self._value, name)

    def __bool__(self) -> bool:
        return bool(self._value)

    def __hash__(self) -> int:
        return hash(self._value)

    def __len__(self) -> int:
        return len(self._value)

    def __iter__(self) -> Any:
        return iter(self._value)

    def __int__(self) -> int:
        return int(self._value)

    def __float__(self) -> float:
        return float(self._value)

    def __index__(self) -> int:
        return operator.index(self._value)

    def __round__(self, ndigits: int | None = None) -> Any:
        return round(self._value) if ndigits is None else round(self._value, ndigits)

    def __format__(self, spec: str) -> str:
        return format(self._value, spec)

    def __contains__(self, item: Any) -> bool:
        return _unwrap(item) in self._value

    def __getitem__(self, key: Any) -> Any:
        return self._value[_unwrap(key)]


def _unwrap(value: Any) -> Any:
    return value._value if isinstance(value, _ValueToken) else value


def _binary(op: Callable[[Any, Any], Any], reflected: bool) -> Callable[..., Any]:
    # operator.* (not value.__op__) so mixed int/float and reflected dispatch work normally.
    if reflected:
        return lambda self, other: op(_unwrap(other), self._value)
    return lambda self, other: op(self._value, _unwrap(other))


def _unary(op: Callable[[Any], Any]) -> Callable[..., Any]:
    return lambda self: op(self._value)


_BINARY_OPS = {
    "add": operator.add,
    "sub": operator.sub,
    "mul": operator.mul,
    "truediv": operator.truediv,
    "floordiv": operator.floordiv,
    "mod": operator.mod,
    "pow": operator.pow,
}
_COMPARISONS = {
    "eq": operator.eq,
    "ne": operator.ne,
    "lt": operator.lt,
    "le": operator.le,
    "gt": operator.gt,
    "ge": operator.ge,
}
for _name, _op in _BINARY_OPS.items():
    setattr(_ValueToken, f"__{_name}__", _binary(_op, reflected=False))
    setattr(_ValueToken, f"__r{_name}__", _binary(_op, reflected=True))
    setattr(_Token, f"__{_name}__", _refuse(_name))
    setattr(_Token, f"__r{_name}__", _refuse(_name))
for _name, _op in _COMPARISONS.items():
    setattr(_ValueToken, f"__{_name}__", _binary(_op, reflected=False))
    setattr(_Token, f"__{_name}__", _refuse(_name))
for _name, _op in {"neg": operator.neg, "pos": operator.pos, "abs": abs}.items():
    setattr(_ValueToken, f"__{_name}__", _unary(_op))
    setattr(_Token, f"__{_name}__", _refuse(_name))
for _name in ("bool", "len", "iter", "int", "float", "index", "round", "contains", "getitem"):
    setattr(_Token, f"__{_name}__", _refuse(_name))


class _AnyUser:
    """`user` for value-less token rendering: every attribute is a token."""

    def __init__(self, registry: set[str]) -> None:
        self._registry = registry

    def __getitem__(self, key: str) -> _Token:
        if not isinstance(key, str) or key.startswith("_"):
            raise KeyError(key)
        return _Token(f"user.{_KEY_UNSAFE.sub('_', key)}", self._registry)


_MAX_SHARED_BODIES = 10_000


def _is_tokenisable(value: Any) -> bool:
    # None and booleans stay real: Jinja tests them by identity (`is none`, `is true`).
    return isinstance(value, str) or (isinstance(value, Number) and not isinstance(value, bool))


@functools.lru_cache(maxsize=256)
def _tags_pattern(tags: frozenset[str]) -> re.Pattern[str]:
    return re.compile("|".join(re.escape(k) for k in sorted(tags, key=len)[::-1]))


def apply_substitutions(text: str, substitutions: Mapping[str, str]) -> str:
    """What SendGrid does with substitutions: replace every tag by its value."""
    if not substitutions:
        return text
    pattern = _tags_pattern(frozenset(substitutions))
    return pattern.sub(lambda match: substitutions[match.group(0)], text)


def _context_shape(context: Mapping[str, Any]) -> tuple:
    """What a tokenised render may depend on besides the tokens' text: every value except
    strings, which count only as empty or not (templates test names for emptiness)."""
    return tuple(
        sorted((key, bool(value) if isinstance(value, str) else repr(value))
               for key, value in context.items())
    )  # fmt: skip


# --- loading ------------------------------------------------------------------------------


class _FooterOnlyLoader(jinja2.FileSystemLoader):
    """Serves only the compliance footer, so a custom templates dir always gets it."""

    def get_source(
        self, environment: jinja2.Environment, template: str
    ) -> tuple[str, str | None, Callable[[], bool] | None]:
        if template not in (FOOTER_HTML, FOOTER_TEXT):
            raise jinja2.TemplateNotFound(template)
        return super().get_source(environment, template)

    def list_templates(self) -> list[str]:
        return [FOOTER_HTML, FOOTER_TEXT]


def _autoescape(name: str | None) -> bool:
    return name is not None and name.endswith(".html.j2")


def _error_line(exc: BaseException, filename: str | None) -> int | None:
    """The template line of a runtime error (Jinja rewrites tracebacks to template lines)."""
    line = None
    tb: types.TracebackType | None = exc.__traceback__
    while tb is not None:
        if filename and tb.tb_frame.f_code.co_filename == filename:
            line = tb.tb_lineno
        tb = tb.tb_next
    return line


def _insert_html_footer(html: str, footer: str) -> str:
    closes = list(_BODY_CLOSE.finditer(html))
    if not closes:
        return f"{html.rstrip()}\n{footer.strip()}\n"
    at = closes[-1].start()
    return f"{html[:at].rstrip()}\n{footer.strip()}\n{html[at:]}"


def _append_text_footer(text: str, footer: str) -> str:
    return f"{text.rstrip()}\n\n{footer.strip()}\n"


class TemplateRenderer:
    """Renders one template for one recipient, footer included."""

    def __init__(self, templates_dir: Path, identity: SenderIdentity) -> None:
        self.templates_dir = Path(templates_dir)
        self.identity = identity
        self._env = jinja2.Environment(
            loader=jinja2.ChoiceLoader(
                [
                    jinja2.FileSystemLoader(self.templates_dir),
                    _FooterOnlyLoader(DEFAULT_TEMPLATES_DIR),
                ]
            ),
            undefined=jinja2.StrictUndefined,
            autoescape=_autoescape,
            # Block tags on their own line leave no blank lines in the plain-text part.
            trim_blocks=True,
            lstrip_blocks=True,
            # A renderer lives for one run: no stat() of every file on every render.
            auto_reload=False,
        )
        # Tokenised bodies by (template, context shape): most recipients share one.
        self._tokenised: dict[tuple, tuple[RenderedEmail, list[str]]] = {}

    # -- public API ------------------------------------------------------------------------

    def missing_parts(self, template: str) -> list[str]:
        """Template files that do not exist, e.g. `['stalled/nudge_1.txt.j2']`."""
        missing = []
        for suffix in PART_SUFFIXES.values():
            try:
                self._env.get_template(f"{template}{suffix}")
            except jinja2.TemplateNotFound:
                missing.append(f"{template}{suffix}")
            except jinja2.TemplateSyntaxError:
                pass  # exists; render() reports the syntax error with its line
        return missing

    def render(self, template: str, recipient: Recipient) -> RenderedEmail:
        """The final email for `recipient`: subject, html and text, footer appended."""
        context = self._context(dict(recipient.context), self._unsubscribe(recipient))
        return self._render(template, context)

    def render_with_tokens(
        self, template: str, recipient: Recipient | None = None
    ) -> tuple[RenderedEmail, list[str]]:
        """The email with a token wherever a personal value is printed, and those tokens.

        Without a recipient every `user.*` (any name: nothing is checked against a context)
        and the unsubscribe URL are value-less tokens; a template that branches or computes
        on them raises NotBatchableError. With a recipient, tokens carry the values so
        logic works, and unknown names fail as in render() (see render_for_batch).
        """
        registry: set[str] = set()
        if recipient is None:
            user: Any = _AnyUser(registry)
            unsubscribe: Any = _Token(UNSUBSCRIBE_TOKEN_PATH, registry)
        else:
            user = {
                key: _ValueToken(f"user.{_KEY_UNSAFE.sub('_', key)}", registry, value)
                if _is_tokenisable(value)
                else value
                for key, value in recipient.context.items()
            }
            unsubscribe = _ValueToken(
                UNSUBSCRIBE_TOKEN_PATH, registry, self._unsubscribe(recipient)
            )
        rendered = self._render(template, self._context(user, unsubscribe))
        combined = "\n".join((rendered.subject, rendered.html, rendered.text))
        return rendered, sorted(token for token in registry if token in combined)

    def substitutions(
        self, tokens: list[str], recipient: Recipient, unsubscribe: str | None = None
    ) -> dict[str, str]:
        """This recipient's value for each token from render_with_tokens()."""
        values: dict[str, Any] = {
            UNSUBSCRIBE_TOKEN_PATH: unsubscribe or self._unsubscribe(recipient)
        }
        for key, value in recipient.context.items():
            values[f"user.{_KEY_UNSAFE.sub('_', key)}"] = value
        result: dict[str, str] = {}
        for token in tokens:
            path = token.strip("%")
            if path in values:
                result[token] = str(values[path])
            elif path.endswith("_html") and path[: -len("_html")] in values:
                result[token] = str(escape(values[path[: -len("_html")]]))
            else:
                raise KeyError(f"no value for token {token} in the recipient's context")
        return result

    def render_for_batch(self, template: str, recipient: Recipient) -> BatchRender:
        """A shareable tokenised body plus substitutions, verified against render().

        The tokenised body is reused across recipients whose context has the same shape;
        every recipient is still checked against their own render(), and gets a fresh
        tokenised body, or else the literal email (no substitutions), when the shared one
        would not reproduce it exactly (e.g. a filter that changes a value's case).
        """
        unsubscribe = self._unsubscribe(recipient)
        final = self._render(template, self._context(dict(recipient.context), unsubscribe))
        key = (template, _context_shape(recipient.context))
        shared = self._tokenised.get(key)
        if shared is not None:
            verified = self._verified(shared, recipient, unsubscribe, final)
            if verified is not None:
                return verified
        try:
            fresh = self.render_with_tokens(template, recipient)
        except TemplateRenderError:
            return BatchRender(email=final, substitutions={})
        verified = self._verified(fresh, recipient, unsubscribe, final)
        if verified is None:
            return BatchRender(email=final, substitutions={})
        if len(self._tokenised) >= _MAX_SHARED_BODIES:
            self._tokenised.clear()
        self._tokenised[key] = fresh
        return verified

    # -- internals -------------------------------------------------------------------------

    def _verified(
        self,
        tokenised: tuple[RenderedEmail, list[str]],
        recipient: Recipient,
        unsubscribe: str,
        final: RenderedEmail,
    ) -> BatchRender | None:
        email, tokens = tokenised
        try:
            substitutions = self.substitutions(tokens, recipient, unsubscribe)
        except KeyError:
            return None
        if not self._reproduces(email, substitutions, final):
            return None
        return BatchRender(email=email, substitutions=substitutions)

    @staticmethod
    def _reproduces(
        tokenised: RenderedEmail, substitutions: dict[str, str], final: RenderedEmail
    ) -> bool:
        # A value that itself contains a tag could be substituted again at SendGrid.
        if any(tag in value for value in substitutions.values() for tag in substitutions):
            return False
        return all(
            apply_substitutions(getattr(tokenised, part), substitutions) == getattr(final, part)
            for part in ("subject", "html", "text")
        )

    def _unsubscribe(self, recipient: Recipient) -> str:
        return self.identity.unsubscribe_link(recipient.send_id)

    def _context(self, user: Any, unsubscribe_url: Any) -> dict[str, Any]:
        return {
            "user": user,
            "app_url": self.identity.app_url,
            "unsubscribe_url": unsubscribe_url,
            "postal_address": self.identity.postal_address,
        }

    def _render(self, template: str, context: dict[str, Any]) -> RenderedEmail:
        subject = self._render_file(f"{template}{PART_SUFFIXES['subject']}", context)
        html = self._render_file(f"{template}{PART_SUFFIXES['html']}", context)
        text = self._render_file(f"{template}{PART_SUFFIXES['text']}", context)
        footer_html = self._render_file(FOOTER_HTML, context)
        footer_text = self._render_file(FOOTER_TEXT, context)
        return RenderedEmail(
            # A header cannot hold line breaks or control characters (header injection), and
            # is capped; a shared tokenised subject is verified against this final one.
            subject=subject_text(subject),
            html=_insert_html_footer(html, footer_html),
            text=_append_text_footer(text, footer_text),
        )

    def _render_file(self, name: str, context: dict[str, Any]) -> str:
        try:
            compiled = self._env.get_template(name)
        except jinja2.TemplateNotFound:
            what = "compliance footer" if name in (FOOTER_HTML, FOOTER_TEXT) else "template"
            raise TemplateRenderError(
                name, None, f"{what} file not found under {self.templates_dir}"
            ) from None
        except jinja2.TemplateSyntaxError as exc:
            raise TemplateRenderError(name, exc.lineno, f"syntax error: {exc.message}") from None
        try:
            return compiled.render(context)
        except NotBatchableError as exc:
            raise NotBatchableError(name, _error_line(exc, compiled.filename), exc.reason) from None
        except jinja2.TemplateError as exc:
            raise TemplateRenderError(
                name, _error_line(exc, compiled.filename), exc.message or str(exc)
            ) from None
        except Exception as exc:  # e.g. arithmetic on None inside a template
            raise TemplateRenderError(
                name, _error_line(exc, compiled.filename), f"{type(exc).__name__}: {exc}"
            ) from None
