"""What llc sends out of a call: signed requests (HTTP tools, call events)."""
