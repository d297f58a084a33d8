"""Graceful drain: on SIGTERM (or Ctrl-C) stop taking calls, let active ones finish, then exit.

Restarts and deploys send SIGTERM (systemd, ``llc-phone restart``); pm2 sends SIGINT. Either starts
a drain: ``server.draining`` makes /twiml answer new (signed) calls with a polite ``<Say>`` and
hang-up (or ``<Dial>`` the fallback number) and ``POST /calls`` answer 503; calls in progress,
and outbound calls still ringing, run on for up to LLC_DRAIN_TIMEOUT_S. Then whatever call is
left is ended through its own nursery, so its record and "call ended" line are still written,
and ringing calls are cancelled through Twilio's REST API. A second signal skips the wait.
"""

from __future__ import annotations

import signal

import trio

from llc.core.record import EndReason
from llc.log import get_logger
from llc.twilio.twiml import say_and_dial, say_and_hangup
from llc.web.server import Server

log = get_logger("drain")

DRAIN_MESSAGE = "Sorry, we cannot take your call right now. Please call back in a minute."
# After the deadline, ended calls need a moment to close their sockets and write records.
SETTLE_S = 2.0
POLL_S = 0.05


def drain_twiml(number: str | None) -> str:
    """Apologise and hang up, or hand the call to LLC_DRAIN_FALLBACK_NUMBER."""
    return say_and_dial(DRAIN_MESSAGE, number) if number else say_and_hangup(DRAIN_MESSAGE)


def ringing(server: Server) -> set[str]:
    """Outbound calls this server placed whose stream has not arrived: the callee may still answer."""
    return {sid for sid in server.tickets.waiting_calls(trio.current_time()) if sid in server.dialer.calls}


def _busy(server: Server, outbound: bool) -> bool:
    # Sockets that have not started count only while a ticket is out: with none out, no such
    # socket can become a call, and a client connecting again and again would otherwise hold
    # the drain to its whole timeout.
    unstarted = len(server.active) > server.active_calls and server.expecting_streams()
    return bool(server.active_calls or unstarted or (outbound and ringing(server)))


async def _wait_idle(server: Server, hurry: trio.Event | None = None, *, outbound: bool = True) -> None:
    while _busy(server, outbound) and not (hurry is not None and hurry.is_set()):
        await trio.sleep(POLL_S)


async def drain(server: Server, timeout_s: float, hurry: trio.Event | None = None) -> None:
    """Turn new calls away, wait for active and ringing calls up to ``timeout_s``, then end the rest."""
    server.draining = True
    log.warning("draining: new calls are turned away", extra={"active_calls": server.active_calls,
                                                             "ringing": len(ringing(server)), "timeout_s": timeout_s})
    with trio.move_on_after(timeout_s):
        await _wait_idle(server, hurry)
    left = list(server.active)
    for bridge in left:
        bridge.end(EndReason.SERVER_DRAIN, f"still active when the drain ended (LLC_DRAIN_TIMEOUT_S={timeout_s:g})")
    sip_left = list(server.calls.sip)
    for call in sip_left:  # OpenAI holds the audio: without a hang-up the caller would stay on, unsteered
        call.end(EndReason.SERVER_DRAIN, f"still active when the drain ended (LLC_DRAIN_TIMEOUT_S={timeout_s:g})",
                 hang_up=True)
    # A callee who answers after this would reach a server that has gone: cancel the ringing.
    cancelled: list[str] = []
    with trio.move_on_after(SETTLE_S):
        cancelled = await server.dialer.cancel_unconnected(ringing(server))
    with trio.move_on_after(SETTLE_S):
        await _wait_idle(server, outbound=False)
    log.info("drained", extra={"ended_by_drain": len(left) + len(sip_left), "cancelled_ringing": len(cancelled),
                               "still_active": server.active_calls})


async def watch_signals(
    server: Server, server_scope: trio.CancelScope, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED
) -> None:
    """Wait for SIGTERM/SIGINT, drain, then cancel ``server_scope`` so ``serve`` returns (exit 0)."""
    with trio.open_signal_receiver(signal.SIGTERM, signal.SIGINT) as signals:
        task_status.started()
        async for signum in signals:
            log.info("received %s", signal.Signals(signum).name)
            break
        hurry = trio.Event()

        async def second_signal() -> None:
            async for signum in signals:
                log.warning("received %s again: ending active calls now", signal.Signals(signum).name)
                hurry.set()
                return

        async with trio.open_nursery() as nursery:
            nursery.start_soon(second_signal)
            await drain(server, server.settings.drain_timeout_s, hurry)
            nursery.cancel_scope.cancel()
    server_scope.cancel()
