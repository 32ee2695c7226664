"""`python -m phoneprov` is the `phoneprov` command."""

from .cli import main

main()
