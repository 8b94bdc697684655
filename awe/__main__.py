"""``python -m awe`` runs the CLI."""

from awe.cli import main

main()
