"""`phoneprov dnsmasq-snippet` and `check` against values that would break a dnsmasq line:
what the config schema refuses, and what the writer refuses after it."""

from pathlib import Path

import pytest
from click.testing import CliRunner

from phoneprov.cli import cli

GOOD = '[server]\nurl = "http://10.231.0.1:8080"\n'


def run(*args: str):
    return CliRunner().invoke(cli, list(args), catch_exceptions=False)


def write(directory: Path, text: str, name: str = "phoneprov.toml") -> Path:
    path = directory / name
    path.write_text(text)
    return path


def assert_refused(result, *words: str) -> None:
    assert result.exit_code == 2, result.output
    assert result.stdout == ""  # not one line of a half snippet
    assert result.stderr.startswith("error: ")
    for word in words:
        assert word in result.stderr


def test_the_snippet_for_a_plain_config(tmp_path):
    result = run("dnsmasq-snippet", "--config", str(write(tmp_path, GOOD)))
    assert result.exit_code == 0, result.output
    assert "dhcp-hostsdir=/var/lib/phoneprov/dnsmasq/hosts\n" in result.stdout


@pytest.mark.parametrize("command", ["check", "dnsmasq-snippet"])
def test_a_trailing_newline_in_server_url_is_refused_by_the_schema(tmp_path, command):
    config = write(tmp_path, '[server]\nurl = "http://10.231.0.1:8080\\n"\n')
    result = run(command, "--config", str(config))
    assert_refused(result, f"{config}:2: server.url", "control characters")


@pytest.mark.parametrize("key", ["hostsdir", "optsdir"])
def test_a_newline_in_a_dnsmasq_directory_is_refused_by_the_schema(tmp_path, key):
    config = write(tmp_path, GOOD + f'[dhcp]\n{key} = "hosts\\ndhcp-script=/tmp/evil"\n')
    result = run("dnsmasq-snippet", "--config", str(config))
    assert_refused(result, f"dhcp.{key}", "control characters")
    assert "dhcp-script=/tmp/evil" not in result.stdout


def test_a_quote_in_a_directory_is_refused_by_the_schema(tmp_path):
    """dnsmasq would stop at start-up: `missing " at line 2` (the writer's own line check,
    asked by the config schema, names the config line)."""
    config = write(tmp_path, GOOD + '[dhcp]\nhostsdir = "ho\\"sts"\n')
    result = run("dnsmasq-snippet", "--config", str(config))
    assert_refused(result, "phoneprov.toml:4: dhcp.hostsdir cannot be a dnsmasq path", "quote")


def test_a_comment_sign_after_a_space_is_refused_by_the_schema(tmp_path):
    """dnsmasq would silently read `dhcp-optsdir=<dir>/my` (the rest is a comment)."""
    config = write(tmp_path, GOOD + '[dhcp]\noptsdir = "my #opts"\n')
    result = run("dnsmasq-snippet", "--config", str(config))
    assert_refused(result, "dhcp.optsdir cannot be a dnsmasq path", "comment")


def test_a_newline_in_the_config_path_does_not_become_a_dnsmasq_line(tmp_path):
    """The header names the config file: a newline there would start a live line."""
    directory = tmp_path / "x\ndhcp-script=" / "tmp"
    directory.mkdir(parents=True)
    config = write(directory, GOOD, "evil")
    assert_refused(run("dnsmasq-snippet", "--config", str(config)), "control character")


def test_a_newline_in_the_hook_path_writes_nothing(tmp_path):
    config = write(tmp_path, GOOD)
    hook = tmp_path / "hook\ndhcp-script=x"
    result = run("dnsmasq-snippet", "--config", str(config), "--hook", str(hook))
    assert_refused(result, "control character")
    assert not hook.exists()
