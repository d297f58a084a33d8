"""`llc demo`, `llc bench`, `llc soak`: the test kit's commands (listed in ``llc.commands.COMMANDS``)."""
