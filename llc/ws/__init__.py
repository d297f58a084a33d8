"""WebSocket layer: the fast engine (websockets' sans-I/O protocol on Trio sockets) and the Transport interface."""
