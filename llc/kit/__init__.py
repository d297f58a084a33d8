"""The test kit: simulator, benchmarks, soak and demo. It imports the product, never the reverse."""
