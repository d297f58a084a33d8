"""Async tools the model can call during a call, and their registry."""
