"""Async tools the model can call during a call: the registry and built-ins, and the user's own
``@tool`` functions (``decorator``: the mark; ``schema``: JSON schema from a signature; ``loader``:
the LLC_TOOLS modules imported at start; ``listing``: what `llc-phone tools` shows)."""
