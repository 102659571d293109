"""``python -m evidence_catalog`` runs the command line."""

from evidence_catalog.cli import run

run()
