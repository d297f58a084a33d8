"""llc-phone's tests: a package, so shared helpers import as ``tests.helpers.…``."""
