"""End to end: real sockets on loopback, the real server against the simulator, real processes."""
