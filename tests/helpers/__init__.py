"""Shared test helpers, imported by name (conftest.py only registers fixtures)."""
