"""The Jinja2 side: templates run in the immutable sandbox with StrictUndefined (a missing
variable is an error, not an empty string) and XML autoescaping; every rendered file is
checked for well-formed XML (expat, no DOCTYPE) before anyone gets it, so a template error or
broken XML raises `TemplateProblem` naming `template:line`, never a partial file."""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Any

from ..core import layering
from ..core.errors import ConfigError, InputError
from ..core.reference import check_well_formed

if TYPE_CHECKING:
    from ..core.phonexml import Problem

INDEX = re.compile(r"\[[0-9]+\]")  # identity[2] in an XPath
_COMMENT = re.compile(r"\{#.*?#\}", re.S)  # a Jinja comment


class TemplateProblem(ConfigError):
    """A template failed to render or rendered something that is not well-formed XML."""


@dataclass(frozen=True, slots=True)
class Rendered:
    body: bytes
    etag: str  # quoted, as sent in the ETag header

    @classmethod
    def of(cls, body: bytes) -> Rendered:
        return cls(body, '"' + hashlib.blake2b(body, digest_size=12).hexdigest() + '"')


class Renderer:
    """Jinja2 sandbox over one templates directory."""

    def __init__(self, templates: Path) -> None:
        from jinja2 import FileSystemLoader, StrictUndefined
        from jinja2.sandbox import ImmutableSandboxedEnvironment

        self.templates = templates
        self.env = ImmutableSandboxedEnvironment(
            loader=FileSystemLoader(str(templates)),
            undefined=StrictUndefined,
            autoescape=True,
            auto_reload=True,
            keep_trailing_newline=True,
        )

    def render(self, device_type: str, name: str, variables: dict[str, Any]) -> bytes:
        """The checked bytes of one served file; TemplateProblem when it cannot be made."""
        from jinja2 import TemplateError, TemplateNotFound, TemplateSyntaxError

        candidates = layering.template_candidates(device_type, name)
        where = str(self.templates / candidates[0])
        try:
            template = self.env.select_template(list(candidates))
            where = template.filename or where
            text = template.render(variables)
        except TemplateNotFound:
            raise TemplateProblem(
                f"no template for {name} (looked for {', '.join(candidates)})", str(self.templates)
            ) from None
        except TemplateSyntaxError as e:
            raise TemplateProblem(
                f"template syntax: {e.message}", f"{e.filename}:{e.lineno}"
            ) from None
        except (TemplateError, ArithmeticError, LookupError, TypeError, ValueError) as e:
            raise TemplateProblem(
                f"rendering {name}: {type(e).__name__}: {e}", _template_line(e.__traceback__, where)
            ) from None
        body = text.encode("utf-8")
        try:
            check_well_formed(body)
        except InputError as e:
            raise TemplateProblem(f"{name} renders to bad XML: {e}", where) from None
        return body

    def source(self, device_type: str, name: str) -> tuple[str, str]:
        """(file name, text) of the template that renders `name` (after a successful render)."""
        template = self.env.select_template(list(layering.template_candidates(device_type, name)))
        assert self.env.loader is not None and template.name is not None
        text, filename, _ = self.env.loader.get_source(self.env, template.name)
        return filename or template.name, text


def template_line(problem: Problem, body: bytes, source: str) -> int:
    """The template line that most likely wrote the element or attribute of `problem` (0 if
    none): the n-th template line naming it, n counted in the rendered output up to the
    problem's line (exact unless a loop or a variable writes the name)."""
    last = re.sub(r"\[[0-9]+\]$", "", problem.xpath.rsplit("/", 1)[-1])
    if not last:
        return 0
    name = re.escape(last.lstrip("@").split(":")[-1])
    pattern = re.compile(rf"\b{name}\s*=" if last.startswith("@") else rf"<{name}[\s/>]|<{name}$")
    rendered = body.decode("utf-8", "replace").splitlines()[: max(problem.line, 1)]
    nth = max(1, sum(1 for text in rendered if pattern.search(text)))
    source = _COMMENT.sub(lambda m: "\n" * m.group().count("\n"), source)  # keeps line numbers
    candidates = [n for n, text in enumerate(source.splitlines(), 1) if pattern.search(text)]
    return candidates[min(nth, len(candidates)) - 1] if candidates else 0


def _template_line(tb: TracebackType | None, filename: str) -> str:
    """`template:line` of the innermost template frame (Jinja maps frames to template lines)."""
    line = 0
    while tb is not None:
        if tb.tb_frame.f_code.co_filename == filename:
            line = tb.tb_lineno
        tb = tb.tb_next
    return f"{filename}:{line}" if line else filename
