"""The fast engine's lifecycle: one state, its legal moves named (in the style of h11 and wsproto).

Why one enum: what a socket may do next (send, read, be parked by the hub, give its bytes to
the protocol, close its fd) follows from where it is in its life, and a set of independent
flags lets combinations exist that mean nothing. Here each state says what is allowed in it
and what moves it on; the engine asks only its own state on the hot path, and brings it up to
date from the protocol's public ``state`` after every call into the protocol.

``OPEN``
    The handshake is done and no close frame has gone out. Sends go out; reads cut whole data
    frames in the engine and hand everything else to the protocol, whole; the hub may park
    the socket. A close frame going out (``close()``, our echo of the peer's close, the
    protocol failing the connection on a bad frame with 1002/1009) moves it to ``CLOSING``;
    the peer's end of stream without a close frame to ``ENDED``; ``abort()`` to ``ABORTED``.

``CLOSING``
    A close frame of ours is out. Sends raise. Every byte read goes to the protocol, any
    buffered partial frame first (after a failure the protocol discards them; after our
    close it still delivers the peer's last frames). The peer's close or end is awaited
    within one bound, ``CLOSE_WAIT_S`` from the first wait, so a peer that keeps sending
    cannot hold it open. The peer's end moves it to ``ENDED``; ``close()`` to ``CLOSED``; the
    bound running out, or ``abort()``, to ``ABORTED``.

``ENDED``
    The protocol is finished: the close handshake completed, or the peer's stream ended.
    Nothing more is read and sends raise; messages already queued are still delivered. The
    fd is still open (it may owe the peer our half-close) until ``close()`` (``CLOSED``) or
    ``abort()`` (``ABORTED``).

``CLOSED``
    ``close()`` let go of the fd after the closing handshake, or after as much of it as the
    peer allowed within the bound. Final.

``ABORTED``
    Cut without a handshake (a dead peer, a write that stalled, a socket or TLS error, the
    close wait running out); the reason is kept and every waiting or later call raises it.
    Final.

An operation its state does not allow raises ``TransportClosed`` (the call code relies on
that). A move this table does not allow is a bug in the engine: ``IllegalTransition``.
"""

from __future__ import annotations

import enum

from websockets.protocol import State


class ConnectionState(enum.Enum):
    OPEN = "open"
    CLOSING = "closing"
    ENDED = "ended"
    CLOSED = "closed"
    ABORTED = "aborted"


OPEN = ConnectionState.OPEN
CLOSING = ConnectionState.CLOSING
ENDED = ConnectionState.ENDED
CLOSED = ConnectionState.CLOSED
ABORTED = ConnectionState.ABORTED

# Still holding an fd that reads or the closing handshake may use.
LIVE = frozenset((OPEN, CLOSING, ENDED))

# OPEN never goes straight to CLOSED: close() sends its close frame first (CLOSING).
NEXT: dict[ConnectionState, frozenset[ConnectionState]] = {
    OPEN: frozenset((CLOSING, ENDED, ABORTED)),
    CLOSING: frozenset((ENDED, CLOSED, ABORTED)),
    ENDED: frozenset((CLOSED, ABORTED)),
    CLOSED: frozenset(),
    ABORTED: frozenset(),
}


class IllegalTransition(AssertionError):
    """The engine tried a move its state table does not allow: a bug, never a peer's doing."""


def moved(old: ConnectionState, new: ConnectionState) -> ConnectionState:
    """``new`` when ``old`` may move to it; raises IllegalTransition otherwise."""
    if new not in NEXT[old]:
        raise IllegalTransition(f"the engine may not move from {old.name} to {new.name}")
    return new


# Ours for each of the protocol's states after the handshake (CONNECTING has none).
_FROM_PROTOCOL = {State.OPEN: OPEN, State.CLOSING: CLOSING, State.CLOSED: ENDED}


def opened(protocol: State) -> ConnectionState:
    """The engine's first state: it takes over an open connection, never one mid-handshake."""
    if protocol is not State.OPEN:
        raise IllegalTransition(f"the engine takes over an open connection, not a {protocol.name} one")
    return OPEN


def synced(old: ConnectionState, protocol: State) -> ConnectionState:
    """Our state after a call into the protocol left it in ``protocol``.

    Once the engine let go of the fd (CLOSED, ABORTED) the protocol's view no longer matters.
    """
    if old not in LIVE:
        return old
    new = _FROM_PROTOCOL.get(protocol)
    if new is None:
        raise IllegalTransition(f"the protocol went back to {protocol.name}")
    return old if new is old else moved(old, new)
