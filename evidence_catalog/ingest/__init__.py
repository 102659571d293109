"""Ingestion of reports: feed-reader digests (more formats follow)."""
