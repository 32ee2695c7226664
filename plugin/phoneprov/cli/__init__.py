"""The `phoneprov` command: one thin click command per capability.

Each submodule has `register(group)`; heavy imports (Flask, lxml, asyncio) stay inside the
commands so `phoneprov --help` and the light commands start fast.
"""

from __future__ import annotations

import click

from .. import __version__
from . import (
    admin,
    basics,
    dnsmasq,
    doctor,
    export,
    lab,
    phone,
    plan,
    schema,
    settings,
    setup,
    sip,
    sync,
    web,
)
from .common import Group

REGISTRARS = [
    basics.register,
    dnsmasq.register,
    plan.register,
    web.register,
    sip.register,
    phone.register,
    settings.register,
    schema.register,
    lab.register,
    doctor.register,
    setup.register,
    admin.register,
    export.register,
    sync.register,
]


@click.group(cls=Group, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="phoneprov")
def cli() -> None:
    """Zero-touch provisioning of Auerswald/FONtevo D-series phones with dnsmasq.

    Typical flow: `phoneprov check`, then `phoneprov apply` (dnsmasq options),
    `phoneprov serve` (the phones' HTTP endpoint), `phoneprov doctor` when a phone does not
    provision. Every command takes --config (or $PHONEPROV_CONFIG).
    """


for register in REGISTRARS:
    register(cli)


def main() -> None:
    cli(prog_name="phoneprov")
