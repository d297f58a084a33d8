"""Operations tooling: pid file, port owners, supervisors, restart, snapshots, doctor checks."""
