"""The store as the CLI commands open it: --db, else LLC_DB_URL (environment or .env)."""

from __future__ import annotations

import argparse

from llc.config import load_settings
from llc.store import Store, open_store


def open_cli_store(args: argparse.Namespace) -> Store:
    url = getattr(args, "db", None) or load_settings().db_url
    store = open_store(url)
    store.open_sync()  # a bad URL fails here with StoreError, reported by the CLI
    return store
