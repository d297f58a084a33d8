"""The store as the CLI commands open it: --db, else LLC_DB_URL (environment or .env)."""

from __future__ import annotations

import argparse
from typing import Any

import orjson

from llc.config import load_settings
from llc.store import Store, open_store


def printed_as_json_or_empty(rows: list[dict[str, Any]], args: argparse.Namespace, empty: str) -> bool:
    """``--json`` prints the rows; no rows prints ``empty``. True when nothing is left to print."""
    if args.json:
        print(orjson.dumps(rows).decode())
        return True
    if not rows:
        print(empty)
        return True
    return False


def open_cli_store(args: argparse.Namespace) -> Store:
    url = getattr(args, "db", None) or load_settings().db_url
    store = open_store(url)
    store.open_sync()  # a bad URL fails here with StoreError, reported by the CLI
    return store
