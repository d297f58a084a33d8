"""Scenarios (TOML) and the inbound modes: AI IVR, Receptionist, CSR with a database."""
