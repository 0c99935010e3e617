"""``python -m attribution`` runs the CLI."""

from attribution.cli import main

main()
