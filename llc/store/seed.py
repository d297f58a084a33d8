"""A small sample data set for the CSR scenario: `llc-phone db seed` loads it (idempotent)."""

from __future__ import annotations

from llc.store.backends import Backend
from llc.store.sql import UPSERT_CUSTOMER, UPSERT_ORDER

CUSTOMERS: list[tuple[str, str, str, str, str, float]] = [
    ("C001", "Ann Lee", "+15550100001", "ann@example.com", "plus", 0.0),
    ("C002", "Bob Ortiz", "+15550100011", "bob@example.com", "basic", 42.5),
    ("C003", "Chen Wu", "+15550100012", "chen@example.com", "plus", 0.0),
]
ORDERS: list[tuple[str, str, str, str, str, str]] = [
    ("A1001", "C001", "Blender Pro 500", "shipped", "2025-03-03", "2025-03-07"),
    ("A1002", "C001", "Spare jug", "processing", "2025-03-05", "2025-03-12"),
    ("B2001", "C002", "Espresso machine", "delivered", "2025-02-20", "2025-02-24"),
    ("C3001", "C003", "Toaster", "cancelled", "2025-01-11", ""),
]


def seed_rows(backend: Backend) -> dict[str, int]:
    for customer in CUSTOMERS:
        backend.query(UPSERT_CUSTOMER, customer)
    for order in ORDERS:
        backend.query(UPSERT_ORDER, order)
    return {"customers": len(CUSTOMERS), "orders": len(ORDERS)}
