"""`[tool.spruce]`: defaults, per-hook settings, custom hooks, and errors that name the key."""

from __future__ import annotations

from pathlib import Path

import pytest

from spruce.config import Config, load_config, parse_config
from spruce.errors import ConfigError, UsageError


def test_a_project_without_pyproject_gets_the_defaults(tmp_path: Path) -> None:
    assert load_config(tmp_path) == Config()


def test_hook_settings_and_custom_hooks_are_read(tmp_path: Path) -> None:
    (tmp_path / "pyproject.toml").write_text(
        "[tool.spruce]\ntimeout = 60\n"
        "[tool.spruce.hooks.mypy]\nenabled = false\n"
        "[tool.spruce.hooks.ruff-check]\nargs = ['--select', 'E']\ntimeout = 5\n"
        "[[tool.spruce.custom]]\nid = 'lint-docs'\nphase = 'comprehensive_hooks'\n"
        "command = ['python', '-m', 'docs']\nfiles = ['*.md']\n"
    )
    config = load_config(tmp_path)
    assert config.timeout == 60
    assert not config.hook("mypy").enabled
    assert config.hook("ruff-check").args == ("--select", "E")
    assert config.hook_timeout_for("ruff-check") == 5
    assert config.hook_timeout_for("bandit") == config.hook_timeout
    assert config.custom[0].id == "lint-docs"
    assert config.custom[0].files == ("*.md",)


def test_tests_run_in_one_process_unless_test_workers_says_otherwise() -> None:
    assert Config().test_workers == 1
    assert parse_config({"test_workers": 3}).test_workers == 3
    assert parse_config({"test_workers": "auto"}).test_workers == "auto"


@pytest.mark.parametrize(
    ("table", "named"),
    [
        ({"bogus": 1}, "tool.spruce.bogus: unknown key"),
        ({"timeout": -1}, "tool.spruce.timeout:"),
        ({"hooks": {"mypy": {"timeout": "soon"}}}, "tool.spruce.hooks.mypy.timeout:"),
        ({"hooks": {"mypy": {"enable": True}}}, "tool.spruce.hooks.mypy.enable: unknown key"),
        ({"hooks": {"pylint": {}}}, "tool.spruce.hooks.pylint: no such hook"),
        ({"custom": [{"id": "x"}]}, "tool.spruce.custom[0]:"),
        ({"custom": [{"id": "x", "command": "make"}]}, "tool.spruce.custom[0].command:"),
        ({"custom": [{"id": "x", "command": []}]}, "tool.spruce.custom[0].command:"),
        ({"custom": [{"id": "mypy", "command": ["x"]}]}, "tool.spruce.custom[0].id:"),
        ({"test_workers": 0}, 'tool.spruce.test_workers: expected an integer >= 1 or "auto"'),
        ({"test_workers": "many"}, "tool.spruce.test_workers: expected an integer >= 1"),
        ({"test_workers": 2.5}, "tool.spruce.test_workers: expected an integer >= 1"),
    ],
)
def test_an_invalid_setting_is_a_usage_error_naming_its_key(
    table: dict[str, object], named: str
) -> None:
    with pytest.raises(ConfigError) as caught:
        parse_config(table)
    assert str(caught.value).startswith(named)
    assert isinstance(caught.value, UsageError)


def test_a_pyproject_that_is_not_toml_is_a_config_error(tmp_path: Path) -> None:
    (tmp_path / "pyproject.toml").write_text("[tool.spruce\n")
    with pytest.raises(ConfigError, match="not valid TOML"):
        load_config(tmp_path)


def test_a_tool_key_that_is_not_a_table_is_a_config_error(tmp_path: Path) -> None:
    (tmp_path / "pyproject.toml").write_text("tool = 1\n")
    with pytest.raises(ConfigError, match="tool: expected a table"):
        load_config(tmp_path)
