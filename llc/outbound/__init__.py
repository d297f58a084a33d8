"""Outbound calls: scenarios, placing a call with a prewarmed session, status and AMD handling."""
