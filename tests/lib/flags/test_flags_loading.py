"""Loading flags.yaml: the committed file, and `path:line: message` for every problem."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from pipelines.lib.flags import (
    DEFAULT_FLAGS_PATH,
    KILL_SWITCH,
    EnvSetting,
    FlagError,
    flag_config_defaults,
    load_flags,
    parse_flags,
)

SEQUENCE_FLAGS = (
    "onboarding_momentum",
    "nurture_never_started",
    "nurture_stalled",
    "nurture_dormant",
    "nurture_declining",
    "nurture_lapsed",
)


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "flags.yaml"
    path.write_text(textwrap.dedent(text).lstrip("\n"))
    return path


def problems(path: Path) -> list[str]:
    with pytest.raises(FlagError) as caught:
        load_flags(path)
    return caught.value.problems


# Line numbers below count from this text's first line ("flags:").
GOOD = """
flags:
  messaging:
    description: Kill switch.
    environments:
      dev: {state: "on"}
      staging: {state: admins}
      prod: {state: "off"}
  nurture_stalled:
    description: Stalled users.
    admin_user_ids: [usr_1, 1042]
    environments:
      dev: {state: rollout, percent: 50}
      staging: {state: admins}
      prod: {state: "off"}
"""


def test_committed_file_is_valid_with_hidden_defaults() -> None:
    flags = load_flags(DEFAULT_FLAGS_PATH)
    assert list(flags.flags) == [KILL_SWITCH, *SEQUENCE_FLAGS]
    for key in flags.flags:
        assert flags.setting(key, "dev") == EnvSetting(state="on")
        assert flags.setting(key, "staging") == EnvSetting(state="admins")
        assert flags.setting(key, "prod") == EnvSetting(state="off")
        assert flags.flags[key].description.strip()


def test_committed_file_quotes_on_and_off() -> None:
    # The loader copes with bare on/off, but other YAML tools read them as booleans.
    text = DEFAULT_FLAGS_PATH.read_text()
    assert "state: on}" not in text and "state: off}" not in text


def test_good_file_loads(tmp_path: Path) -> None:
    flags = load_flags(write(tmp_path, GOOD))
    assert flags.setting("nurture_stalled", "dev") == EnvSetting(state="rollout", percent=50)
    # Bare numeric ids become strings, like user ids everywhere else.
    assert flags.flags["nurture_stalled"].admin_user_ids == ["usr_1", "1042"]
    assert flags.flags["messaging"].admin_user_ids == []


def test_yaml_11_booleans_on_off_are_states(tmp_path: Path) -> None:
    text = GOOD.replace('{state: "on"}', "{state: on}").replace('{state: "off"}', "{state: Off}")
    flags = load_flags(write(tmp_path, text))
    assert flags.setting("messaging", "dev").state == "on"
    assert flags.setting("messaging", "prod").state == "off"
    assert flags.setting("nurture_stalled", "prod").state == "off"
    # Block style too.
    block = """
    flags:
      messaging:
        description: Kill switch.
        environments:
          dev:
            state: on
          staging:
            state: admins
          prod:
            state: off
    """
    flags = load_flags(write(tmp_path, block))
    assert [flags.setting("messaging", e).state for e in ("dev", "prod")] == ["on", "off"]


def test_other_booleans_are_not_states(tmp_path: Path) -> None:
    path = write(tmp_path, GOOD.replace("{state: admins}", "{state: yes}", 1))
    assert problems(path) == [
        f"{path}:6: flag messaging/staging: unknown state true "
        "(expected one of off, admins, rollout, on)"
    ]


def test_unknown_state(tmp_path: Path) -> None:
    path = write(tmp_path, GOOD.replace("{state: admins}", "{state: enabled}", 1))
    assert problems(path) == [
        f"{path}:6: flag messaging/staging: unknown state 'enabled' "
        "(expected one of off, admins, rollout, on)"
    ]


def test_rollout_without_percent(tmp_path: Path) -> None:
    path = write(tmp_path, GOOD.replace("{state: rollout, percent: 50}", "{state: rollout}"))
    assert problems(path) == [
        f"{path}:12: flag nurture_stalled/dev: state rollout needs a percent (0-100)"
    ]


def test_percent_outside_range(tmp_path: Path) -> None:
    path = write(tmp_path, GOOD.replace("percent: 50", "percent: 150"))
    assert problems(path) == [f"{path}:12: flag nurture_stalled/dev: percent 150 is outside 0-100"]


def test_percent_on_a_state_without_rollout(tmp_path: Path) -> None:
    path = write(tmp_path, GOOD.replace("{state: admins}", "{state: admins, percent: 5}", 1))
    assert problems(path) == [
        f"{path}:6: flag messaging/staging: percent only applies to state rollout, not admins"
    ]


def test_missing_prod_environment(tmp_path: Path) -> None:
    text = GOOD.replace('      prod: {state: "off"}\n', "", 1)
    path = write(tmp_path, text)
    assert problems(path) == [
        f"{path}:4: flag messaging: missing environment prod (every flag needs dev, staging, prod)"
    ]


def test_every_problem_is_reported_in_line_order(tmp_path: Path) -> None:
    text = (
        GOOD.replace("    description: Stalled users.\n", "")
        .replace("percent: 50", "percent: 150")
        .replace('      prod: {state: "off"}\n', '      prd: {state: "off"}\n', 1)
        .replace("{state: admins}", "{state: maybe}", 1)
    )
    path = write(tmp_path, text)
    assert problems(path) == [
        f"{path}:4: flag messaging: missing environment prod (every flag needs dev, staging, prod)",
        f"{path}:6: flag messaging/staging: unknown state 'maybe' "
        "(expected one of off, admins, rollout, on)",
        f"{path}:7: flag messaging/prd: unknown environment 'prd' (expected dev, staging, prod)",
        f"{path}:8: flag nurture_stalled: missing description",
        f"{path}:11: flag nurture_stalled/dev: percent 150 is outside 0-100",
    ]
    # The message text is the exception's text, one problem per line.
    with pytest.raises(FlagError, match=r"flags\.yaml:11: flag nurture_stalled/dev"):
        load_flags(path)


def test_duplicate_keys_are_errors_not_silently_overwritten(tmp_path: Path) -> None:
    text = GOOD.replace(
        '      prod: {state: "off"}\n  nurture',
        '      prod: {state: "off"}\n      prod: {state: "on"}\n  nurture',
    )
    path = write(tmp_path, text)
    assert problems(path) == [f"{path}:8: duplicate key 'prod' (first at line 7)"]


def test_unknown_fields_and_bad_keys(tmp_path: Path) -> None:
    text = GOOD.replace(
        "    description: Kill switch.\n", "    description: Kill switch.\n    owner: growth\n", 1
    )
    text = text.replace("  nurture_stalled:", "  Nurture-Stalled:")
    path = write(tmp_path, text)
    assert problems(path) == [
        f"{path}:4: flag messaging: unknown field 'owner'",
        f"{path}:9: flag Nurture-Stalled: flag key 'Nurture-Stalled' must be lower_snake_case",
    ]


def test_kill_switch_is_required(tmp_path: Path) -> None:
    path = write(tmp_path, GOOD.replace("  messaging:", "  messages:"))
    assert problems(path) == [f"{path}:1: missing the 'messaging' flag (the global kill switch)"]


def test_not_a_flags_mapping(tmp_path: Path) -> None:
    path = write(tmp_path, "flag:\n  messaging: {}\n")
    assert problems(path) == [
        f"{path}:1: unknown top-level key 'flag'",
        f"{path}:1: expected a top-level `flags:` mapping of flag key -> definition",
    ]
    empty = write(tmp_path, "# nothing here\n")
    assert problems(empty) == [
        f"{empty}:1: expected a top-level `flags:` mapping of flag key -> definition"
    ]


def test_yaml_syntax_error_has_a_line(tmp_path: Path) -> None:
    path = write(tmp_path, GOOD.replace("{state: admins}", "{state: admins", 1))
    [problem] = problems(path)
    assert problem.startswith(f"{path}:7: invalid YAML:")


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(FlagError, match="cannot read"):
        load_flags(tmp_path / "nope.yaml")


def test_setting_lookup_names_known_keys_and_environments(tmp_path: Path) -> None:
    flags = parse_flags(textwrap.dedent(GOOD))
    with pytest.raises(FlagError, match="known flags: messaging, nurture_stalled"):
        flags.setting("nurture_stale", "prod")
    with pytest.raises(FlagError, match="known environments: dev, staging, prod"):
        flags.setting("messaging", "production")


def test_config_defaults_per_environment() -> None:
    flags = parse_flags(textwrap.dedent(GOOD))
    assert flag_config_defaults(flags, "dev") == {
        "messaging": {"state": "on", "percent": None},
        "nurture_stalled": {"state": "rollout", "percent": 50},
    }
    assert flag_config_defaults(flags, "prod") == {
        "messaging": {"state": "off", "percent": None},
        "nurture_stalled": {"state": "off", "percent": None},
    }
