"""Rendering a device's files: `templates` (the Jinja2 sandbox and its checks), `catalog`
(cached rendered files for the server), `check` (`phoneprov check`, imported from
`render.check`: it loads lxml, which the server does without). Usable without Flask."""

from .catalog import CHECK_EVERY_S, MAX_CACHE_BYTES, Catalog
from .templates import Rendered, Renderer, TemplateProblem, template_line

__all__ = [
    "CHECK_EVERY_S",
    "MAX_CACHE_BYTES",
    "Catalog",
    "Rendered",
    "Renderer",
    "TemplateProblem",
    "template_line",
]
