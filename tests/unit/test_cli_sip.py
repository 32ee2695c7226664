"""The SIP CLI glue: resync's argument errors (the PnP policy: test_pnp_policy.py).

Nothing here touches the network: resync is only run where it must refuse or has no lease.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from phoneprov.cli import sip
from phoneprov.cli.common import Group
from sample_data import KNOWN, SAME_OUI, write_sip_config


def run(*args: str) -> tuple[int, str, str]:
    group = Group("phoneprov")
    sip.register(group)
    result = CliRunner().invoke(group, list(args))
    return result.exit_code, result.stdout, result.stderr


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ((), "give MAC... or --all"),
        (("--all", KNOWN), "give MAC... or --all"),
        (("not-a-mac",), "not a MAC address"),
        ((SAME_OUI,), f"not in the inventory: {SAME_OUI}"),
    ],
)
def test_resync_argument_errors_exit_2(tmp_path: Path, args: tuple[str, ...], message: str) -> None:
    status, out, err = run("resync", "-c", str(write_sip_config(tmp_path)), *args)
    assert (status, out) == (2, "")
    assert err.startswith("error: ") and message in err


def test_resync_without_a_lease_sends_nothing(tmp_path: Path) -> None:
    status, out, _ = run("resync", "-c", str(write_sip_config(tmp_path)), "--all")
    assert (status, out) == (1, f"{KNOWN} - no lease (not sent)\n")


def test_a_bad_config_is_exit_2(tmp_path: Path) -> None:
    config = write_sip_config(tmp_path)
    config.write_text(config.read_text().replace('"known"', '"everyone"'))
    for command in ("resync", "pnp"):
        status, _, err = run(
            command, "-c", str(config), *(["--all"] if command == "resync" else [])
        )
        assert status == 2 and "pnp_policy" in err
