"""`llc-phone db init` creates the schema; `llc-phone db seed` loads the CSR sample data (idempotent)."""

from __future__ import annotations

import argparse

import trio

from llc.commands.store_cli import open_cli_store


def run(args: argparse.Namespace) -> int:
    store = open_cli_store(args)  # creates the schema
    if args.action == "seed":
        counts = trio.run(store.seed)
        print(f"seeded {store.url}: " + ", ".join(f"{n} {k}" for k, n in counts.items()))
    else:
        print(f"schema ready in {store.url} ({store.dialect})")
    return 0


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("db", help="the database: `init` (schema) or `seed` (CSR sample customers and orders)")
    p.add_argument("action", choices=["init", "seed"],
                   help="init: create the tables (done on first start too); seed: load the sample customers and orders")
    p.add_argument("--db", help="database URL or path (default: LLC_DB_URL, else llc.db)")
    p.set_defaults(func=run)
