"""Pure code as data: events in, actions out; no sockets, servers, processes or sleeps."""
