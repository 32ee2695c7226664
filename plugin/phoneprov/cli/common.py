"""What every command shares: the error policy (message on stderr, exit 2) and --config."""

from __future__ import annotations

import json
from typing import Any

import click

from ..core.errors import PhoneprovError


class Failed(click.ClickException):
    """Printed as `error: ...` on stderr; exit status 2 as the CLI contract says."""

    exit_code = 2

    def format_message(self) -> str:
        return self.message

    def show(self, file: Any = None) -> None:
        click.echo(f"error: {self.format_message()}", err=True)


class Group(click.Group):
    """A click group that turns our errors into `Failed` for every nested command."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except PhoneprovError as e:
            raise Failed(str(e)) from None
        except OSError as e:
            raise Failed(f"{e.filename or ''}: {e.strerror or e}".lstrip(": ")) from None


config_option = click.option(
    "--config",
    "-c",
    "config_file",
    type=click.Path(dir_okay=False),
    envvar="PHONEPROV_CONFIG",
    show_envvar=True,
    help="Appliance config file [default: /etc/phoneprov/phoneprov.toml].",
)

json_option = click.option("--json", "as_json", is_flag=True, help="Print JSON for scripts.")


def echo_json(value: Any) -> None:
    click.echo(json.dumps(value, indent=2, sort_keys=False, default=str))


def echo_table(rows: list[dict[str, Any]], columns: list[str], empty: str = "(none)") -> None:
    """A plain aligned table an admin can read and grep."""
    if not rows:
        click.echo(empty)
        return
    cells = [[("" if r.get(c) is None else str(r.get(c))) for c in columns] for r in rows]
    widths = [max(len(c), *(len(row[i]) for row in cells)) for i, c in enumerate(columns)]
    click.echo("  ".join(c.upper().ljust(w) for c, w in zip(columns, widths, strict=True)).rstrip())
    for row in cells:
        click.echo("  ".join(v.ljust(w) for v, w in zip(row, widths, strict=True)).rstrip())
