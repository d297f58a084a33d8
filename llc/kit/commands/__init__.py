"""`llc-phone demo`, `llc-phone bench`, `llc-phone soak`: the test kit's commands (listed in ``llc.commands.COMMANDS``)."""
