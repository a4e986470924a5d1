"""The renderer: autoescaping, strict undefined names, the compliance footer, tokens."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from pipelines.lib.email import (
    NotBatchableError,
    Recipient,
    SenderIdentity,
    TemplateRenderer,
    TemplateRenderError,
)
from pipelines.lib.email.render import DEFAULT_TEMPLATES_DIR, apply_substitutions

IDENTITY = SenderIdentity(
    from_email="hello@example.com",
    from_name="Acme Onboarding",
    unsubscribe_url="https://example.com/unsubscribe",
    postal_address="Acme Inc., 1 Main Street, Springfield 12345",
    app_url="https://app.example.com",
)
NASTY = "<b>Ann & Co</b>"


def write_template(root: Path, name: str, *, subject: str, html: str, text: str) -> str:
    for suffix, source in ((".subject.j2", subject), (".html.j2", html), (".txt.j2", text)):
        path = root / f"{name}{suffix}"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(source)
    return name


def recipient(send_id: str = "send-1", **context: object) -> Recipient:
    base = {
        "first_name": "Ann",
        "name": "Ann Lee",
        "steps_completed": 1,
        "next_step_name": "First Project Created",
        "percent_complete": 25.0,
        "current_streak_days": 2,
        "active_days_last_7": 3,
    }
    base.update(context)
    return Recipient(send_id, f"user-{send_id}", f"{send_id}@example.com", "Ann", base)


@pytest.fixture
def templates(tmp_path: Path) -> Path:
    write_template(
        tmp_path,
        "onboarding/welcome",
        subject="Welcome, {{ user.first_name }}!",
        html=(
            "<html><body><p>Hi {{ user.first_name }},</p>"
            '<p><a href="{{ app_url }}/next">{{ user.next_step_name }}</a></p></body></html>'
        ),
        text="Hi {{ user.first_name }},\nNext: {{ user.next_step_name }}\n",
    )
    return tmp_path


@pytest.fixture
def renderer(templates: Path) -> TemplateRenderer:
    return TemplateRenderer(templates, IDENTITY)


def test_user_data_is_escaped_in_html_and_raw_in_text(renderer: TemplateRenderer) -> None:
    email = renderer.render("onboarding/welcome", recipient(first_name=NASTY))

    assert "Hi &lt;b&gt;Ann &amp; Co&lt;/b&gt;," in email.html
    assert NASTY not in email.html
    assert f"Hi {NASTY}," in email.text
    assert email.subject == f"Welcome, {NASTY}!"


def test_undefined_variable_names_the_template_file_and_line(tmp_path: Path) -> None:
    write_template(
        tmp_path,
        "stalled/nudge_1",
        subject="Hi",
        html="<p>Hello</p>\n<p>{{ user.frist_name }}</p>",
        text="Hello",
    )
    renderer = TemplateRenderer(tmp_path, IDENTITY)

    with pytest.raises(TemplateRenderError) as raised:
        renderer.render("stalled/nudge_1", recipient())

    assert str(raised.value).startswith("stalled/nudge_1.html.j2:2: ")
    assert "frist_name" in str(raised.value)


def test_missing_template_part_is_named(renderer: TemplateRenderer, templates: Path) -> None:
    (templates / "onboarding/welcome.txt.j2").unlink()

    with pytest.raises(TemplateRenderError, match=r"onboarding/welcome\.txt\.j2: template file"):
        renderer.render("onboarding/welcome", recipient())
    assert renderer.missing_parts("onboarding/welcome") == ["onboarding/welcome.txt.j2"]


def test_syntax_error_reports_the_line(tmp_path: Path) -> None:
    write_template(tmp_path, "broken", subject="x", html="<p>\n{% if %}</p>", text="x")

    with pytest.raises(TemplateRenderError, match=r"^broken\.html\.j2:2: syntax error"):
        TemplateRenderer(tmp_path, IDENTITY).render("broken", recipient())


def test_footer_carries_per_recipient_unsubscribe_link_and_postal_address(
    renderer: TemplateRenderer,
) -> None:
    first = renderer.render("onboarding/welcome", recipient("send-a"))
    second = renderer.render("onboarding/welcome", recipient("send-b"))

    for email, send_id in ((first, "send-a"), (second, "send-b")):
        url = f"https://example.com/unsubscribe?send_id={send_id}"
        assert f'href="{url}"' in email.html
        assert url in email.text
        assert IDENTITY.postal_address in email.html
        assert IDENTITY.postal_address in email.text
    # Inside the document, not after it.
    assert first.html.rstrip().endswith("</body></html>")
    assert first.html.index(IDENTITY.postal_address) < first.html.index("</body>")
    assert "send-b" not in first.html


def test_committed_footer_is_used_unless_the_templates_dir_overrides_it(
    tmp_path: Path, templates: Path
) -> None:
    assert (DEFAULT_TEMPLATES_DIR / "_footer.html.j2").is_file()
    assert (DEFAULT_TEMPLATES_DIR / "_footer.txt.j2").is_file()
    (templates / "_footer.txt.j2").write_text("CUSTOM {{ unsubscribe_url }}")

    email = TemplateRenderer(templates, IDENTITY).render("onboarding/welcome", recipient())

    assert "CUSTOM https://example.com/unsubscribe?send_id=send-1" in email.text
    assert "Unsubscribe" in email.html  # the committed html footer still applies


def test_unsubscribe_link_keeps_an_existing_query_and_encodes_the_send_id() -> None:
    identity = SenderIdentity(
        "a@example.com", "A", "https://x.example/u?list=news", "1 Road", "https://x.example"
    )

    assert identity.unsubscribe_link("a b&c") == "https://x.example/u?list=news&send_id=a+b%26c"


def test_subject_is_one_line(tmp_path: Path) -> None:
    write_template(tmp_path, "t", subject="Hi\n  {{ user.first_name }}\n", html="x", text="x")

    email = TemplateRenderer(tmp_path, IDENTITY).render("t", recipient(first_name="A\r\nBcc: x"))

    assert email.subject == "Hi A Bcc: x"


def test_render_with_tokens_puts_distinct_tokens_in_html_and_text(
    renderer: TemplateRenderer,
) -> None:
    email, tokens = renderer.render_with_tokens("onboarding/welcome")

    assert email.subject == "Welcome, %user.first_name%!"
    assert "Hi %user.first_name_html%," in email.html
    assert "Hi %user.first_name%," in email.text
    assert 'href="%unsubscribe_url_html%"' in email.html
    assert "%unsubscribe_url%" in email.text
    assert set(tokens) == {
        "%user.first_name%",
        "%user.first_name_html%",
        "%user.next_step_name%",
        "%user.next_step_name_html%",
        "%unsubscribe_url%",
        "%unsubscribe_url_html%",
    }


def test_substituting_the_tokens_gives_the_personal_render(renderer: TemplateRenderer) -> None:
    email, tokens = renderer.render_with_tokens("onboarding/welcome")
    person = recipient("s-9", first_name=NASTY, next_step_name='Say "hi" & <go>')

    values = renderer.substitutions(tokens, person)
    expected = renderer.render("onboarding/welcome", person)

    assert values["%user.first_name%"] == NASTY
    assert values["%user.first_name_html%"] == "&lt;b&gt;Ann &amp; Co&lt;/b&gt;"
    for part in ("subject", "html", "text"):
        assert apply_substitutions(getattr(email, part), values) == getattr(expected, part)


def test_value_less_tokens_refuse_template_logic(tmp_path: Path) -> None:
    write_template(
        tmp_path,
        "branchy",
        subject="Hi",
        html="<p>\n{% if user.steps_completed >= 2 %}Half way{% endif %}</p>",
        text="x",
    )

    with pytest.raises(NotBatchableError, match=r"branchy\.html\.j2:2: .*user\.steps_completed"):
        TemplateRenderer(tmp_path, IDENTITY).render_with_tokens("branchy")


def test_batch_render_shares_one_body_across_users(renderer: TemplateRenderer) -> None:
    ann = renderer.render_for_batch("onboarding/welcome", recipient("a", first_name="Ann"))
    bob = renderer.render_for_batch("onboarding/welcome", recipient("b", first_name=NASTY))

    assert ann.email == bob.email
    assert bob.substitutions["%user.first_name_html%"] == "&lt;b&gt;Ann &amp; Co&lt;/b&gt;"
    assert ann.substitutions["%unsubscribe_url%"].endswith("send_id=a")


def test_batch_render_follows_branches_and_falls_back_when_a_filter_changes_a_value(
    tmp_path: Path,
) -> None:
    write_template(
        tmp_path,
        "logic",
        subject="{{ user.first_name }}: {{ user.steps_completed }} of 4",
        html=(
            "{% if user.steps_completed >= 2 %}<p>Half way, {{ user.first_name }}!</p>"
            "{% else %}<p>Let's start, {{ user.first_name }}.</p>{% endif %}"
            "<p>{{ (user.percent_complete)|round|int }}% done, {{ 4 - user.steps_completed }} to go"
            "{% if user.name is none %} (no name){% endif %}</p>"
        ),
        text="{{ user.next_step_name|upper }}",
    )
    renderer = TemplateRenderer(tmp_path, IDENTITY)
    people = [
        recipient("a", steps_completed=1, percent_complete=25.0),
        recipient("b", steps_completed=1, percent_complete=25.0, first_name=NASTY),
        recipient("c", steps_completed=3, percent_complete=75.0, name=None),
    ]

    for person in people:
        share = renderer.render_for_batch("logic", person)
        expected = renderer.render("logic", person)
        # `|upper` changes the token, so verification falls back to the literal email.
        assert share.substitutions == {}
        assert share.email == expected

    (tmp_path / "logic.txt.j2").write_text("{{ user.next_step_name }}")
    renderer = TemplateRenderer(tmp_path, IDENTITY)  # templates are read once per renderer
    shares = [renderer.render_for_batch("logic", person) for person in people]
    assert shares[0].email == shares[1].email  # same branch, same numbers: one body
    assert shares[0].email != shares[2].email  # other branch
    for person, share in zip(people, shares, strict=True):
        expected = renderer.render("logic", person)
        for part in ("subject", "html", "text"):
            got = apply_substitutions(getattr(share.email, part), share.substitutions)
            assert got == getattr(expected, part)


@pytest.mark.parametrize(
    "value",
    ["%user.name%", "50% & 'quoted' \"double\"", "line\nbreak", "Ünïcødé ✓", "", "  spaced  "],
)
def test_batch_render_always_reproduces_the_personal_render(
    renderer: TemplateRenderer, value: str
) -> None:
    person = recipient("z", first_name=value, next_step_name=value)

    share = renderer.render_for_batch("onboarding/welcome", person)
    expected = renderer.render("onboarding/welcome", person)

    for part in ("subject", "html", "text"):
        got = apply_substitutions(getattr(share.email, part), share.substitutions)
        assert got == getattr(expected, part)
    assert not re.search(r"%user\.[a-z_]+%", expected.text.replace(value, ""))


def test_a_shared_body_that_does_not_fit_a_recipient_is_not_used(tmp_path: Path) -> None:
    # Same context shape (names are non-empty), but the branch depends on the name itself:
    # the body shared from Ann must not be reused for Bob; Bob gets his own, verified one.
    write_template(
        tmp_path,
        "named",
        subject="Hi {{ user.first_name }}",
        html="{% if user.first_name == 'Ann' %}<p>VIP {{ user.first_name }}</p>"
        "{% else %}<p>Hello {{ user.first_name }}</p>{% endif %}",
        text="{{ user.first_name }}",
    )
    renderer = TemplateRenderer(tmp_path, IDENTITY)
    ann = recipient("a", first_name="Ann")
    bob = recipient("b", first_name="Bob")
    bea = recipient("c", first_name="Bea")
    shares = [renderer.render_for_batch("named", person) for person in (ann, bob, bea)]
    for person, share in zip((ann, bob, bea), shares, strict=True):
        expected = renderer.render("named", person)
        for part in ("subject", "html", "text"):
            got = apply_substitutions(getattr(share.email, part), share.substitutions)
            assert got == getattr(expected, part)
    assert shares[0].email != shares[1].email  # VIP branch vs the other one
    assert shares[1].email == shares[2].email and shares[1].substitutions  # Bob's is shared
