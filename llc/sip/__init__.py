"""Realtime over SIP: OpenAI answers the phone line itself; llc steers the call from its webhook and sideband."""
