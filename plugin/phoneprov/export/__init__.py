"""`phoneprov export`: the phones' files for a web server that is not the appliance.

- `static`: every device's entry and settings files under their token paths, written beside
  the target directory and switched in atomically (`write_tree`);
- `snippets`: nginx and Caddy configuration that serves such a tree over HTTPS as `serve`
  would (only `/t/<token>/...`, the same Content-Type, no listing);
- `redirect_lines`: `mac,url` lines for the vendor redirect service's partner portal.
"""

from .snippets import SnippetOptions, caddy_snippet, nginx_snippet
from .static import ExportResult, export_files, export_paths, redirect_lines, write_tree

__all__ = [
    "ExportResult",
    "SnippetOptions",
    "caddy_snippet",
    "export_files",
    "export_paths",
    "nginx_snippet",
    "redirect_lines",
    "write_tree",
]
