"""Benchmarks run by `llc bench <name>`: one module each, exposing add_arguments() and run()."""

BENCHES: tuple[str, ...] = ("relay", "capacity")
