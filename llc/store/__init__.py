"""Persistent records: calls, messages, tickets, customers and orders (SQLite or PostgreSQL).

The public face: ``open_store(url)`` gives the ``Store`` the server uses (``database.py``);
``backends.py`` holds the blocking drivers it runs in worker threads.
"""

from llc.store.backends import StoreError
from llc.store.database import Store, open_store

__all__ = ["Store", "StoreError", "open_store"]
