"""PostgreSQL for the store tests: LLC_TEST_PG_URL, else a local server on the default port.

Skipped with a clear reason when none is reachable; CI does not depend on it.
"""

from __future__ import annotations

import os
import uuid

import pytest

DEFAULT = "postgresql://postgres@127.0.0.1:5432/postgres"


def pg_url_or_skip() -> str:
    """A fresh schema-free database URL (own search_path per test run), or skip."""
    url = os.environ.get("LLC_TEST_PG_URL", DEFAULT)
    try:
        import psycopg
    except ImportError:
        pytest.skip("psycopg is not installed (pip install -e '.[postgres]'); PostgreSQL tests skipped")
    try:
        with psycopg.connect(url, connect_timeout=2, autocommit=True) as conn:
            schema = "llc_test_" + uuid.uuid4().hex[:10]
            conn.execute(f"CREATE SCHEMA {schema}")
    except psycopg.Error as exc:
        pytest.skip(f"no PostgreSQL reachable at {url} (set LLC_TEST_PG_URL): {str(exc).splitlines()[0]}")
    sep = "&" if "?" in url else "?"
    return f"{url}{sep}options=-csearch_path%3D{schema}"
