"""Call events out: one task per server sends what the outbox holds (``llc.store.outbox``).

Never inside a call: a call only writes its record, and the event rows go with it. This task
claims due rows, POSTs each signed (``llc.events.signing``) with one pooled client, and marks
it delivered on a 2xx. Anything else (refused, 500, no answer within ATTEMPT_TIMEOUT_S) is
tried again after a growing wait (BACKOFF_S) until the event is a day old, then it is marked
failed (``llc-phone events retry`` sends those again). The ``webhook-id`` is the row's, the
same on every attempt and after a restart, so a receiver drops what it already has: a crash
between a delivery and its mark means one more delivery, never none.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from typing import Any, TypeVar

import httpx
import orjson
import trio

from llc import metrics
from llc.events.signing import Signer
from llc.log import get_logger
from llc.store import Store, StoreError
from llc.store.backends import Backend
from llc.store.outbox import DELIVERED, FAILED, OLDEST_PENDING, PRUNE, RETRY_LATER, claim

log = get_logger("events")
T = TypeVar("T")

ATTEMPT_TIMEOUT_S = 10.0
BACKOFF_S = (1.0, 3.0, 8.0, 20.0, 60.0, 180.0, 600.0, 1800.0, 3600.0)  # then every hour
POLL_S = 1.0
BATCH = 20
CONCURRENCY = 8
KEEP_DELIVERED_S = 7 * 24 * 3600.0
STATS_EVERY_S = 10.0
PRUNE_EVERY_S = 3600.0


def backoff(attempts: int) -> float:
    """The wait after the ``attempts``-th failed attempt."""
    return BACKOFF_S[min(attempts, len(BACKOFF_S)) - 1]


class EventDelivery:
    def __init__(self, store: Store, url: str | None, signer: Signer, *, scenario_urls: Mapping[str, str] | None = None,
                 attempt_timeout_s: float = ATTEMPT_TIMEOUT_S, poll_s: float = POLL_S) -> None:
        self.store, self.url, self.signer = store, url, signer
        self.scenario_urls = dict(scenario_urls or {})  # a scenario's own events_url over LLC_EVENTS_URL
        self.attempt_timeout_s, self.poll_s = attempt_timeout_s, poll_s
        # Longer than an attempt: a row is never taken by a second sender while one still tries it.
        self.lease_s = 3 * attempt_timeout_s + 5
        self._limit = trio.CapacityLimiter(CONCURRENCY)
        self._store_down = False
        self._next_prune = 0.0
        # One database operation at a time: events take one of the slots the callers' lookups and the
        # tools share, never all of them, however slow the database or the receiver.
        self._db_slot = trio.CapacityLimiter(1)

    async def run(self, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        limits = httpx.Limits(max_connections=CONCURRENCY, max_keepalive_connections=CONCURRENCY)
        timeout = httpx.Timeout(self.attempt_timeout_s)
        async with httpx.AsyncClient(timeout=timeout, limits=limits, follow_redirects=False) as client:
            task_status.started()
            next_stats = 0.0
            while True:
                if time.monotonic() >= next_stats:
                    next_stats = time.monotonic() + STATS_EVERY_S
                    await self._housekeeping()
                rows = await self._claim()
                if rows:
                    async with trio.open_nursery() as nursery:
                        for row in rows:
                            nursery.start_soon(self._deliver, client, row)
                if len(rows) < BATCH:
                    await trio.sleep(self.poll_s)

    async def _db(self, fn: Callable[[Backend], T]) -> T:
        async with self._db_slot:
            return await self.store.run(fn)

    async def _claim(self) -> list[dict[str, Any]]:
        now = time.time()
        try:
            rows = await self._db(lambda b: claim(b, now, self.lease_s, BATCH))
        except StoreError as exc:
            if not self._store_down:
                log.warning("call events wait: the database is not answering (%s); they are sent when it is back", exc)
            self._store_down = True
            return []
        self._store_down = False
        return rows

    async def _housekeeping(self) -> None:
        """The oldest-pending gauge (pending rows only, through the index); old delivered rows pruned hourly."""
        now = time.time()
        try:
            rows = await self._db(lambda b: b.query(OLDEST_PENDING))
            if now >= self._next_prune:
                self._next_prune = now + PRUNE_EVERY_S
                await self._db(lambda b: b.query(PRUNE, [now - KEEP_DELIVERED_S]))
        except StoreError:
            return
        oldest = rows[0]["oldest"] if rows else None
        metrics.events_oldest_pending(max(0.0, now - oldest) if oldest else 0.0)

    async def _deliver(self, client: httpx.AsyncClient, row: dict[str, Any]) -> None:
        try:
            async with self._limit:
                problem = await self._post(client, row)
        except trio.Cancelled:  # the server stops: hand the row back so the next start need not wait out the lease
            with trio.move_on_after(2) as scope:
                scope.shield = True
                try:
                    await self._db(lambda b: b.query(RETRY_LATER, [time.time(), "llc stopped", row["id"]]))
                except StoreError:
                    pass
            raise
        now = time.time()
        if problem is None:
            query, params, result = DELIVERED, [now, row["id"]], "delivered"
        elif now + backoff(int(row["attempts"])) >= float(row["give_up_at"]):
            query, params, result = FAILED, [problem, row["id"]], "failed"
            log.error("call event given up after a day of attempts (%s); `llc-phone events retry` sends it again",
                      problem, extra={"call_sid": row["call_sid"], "event": row["type"], "webhook_id": row["id"]})
        else:
            wait = backoff(int(row["attempts"]))
            query, params, result = RETRY_LATER, [now + wait, problem, row["id"]], "retried"
            log.warning("call event not delivered (%s); next attempt in %g s", problem, wait,
                        extra={"call_sid": row["call_sid"], "event": row["type"], "webhook_id": row["id"],
                               "attempt": row["attempts"]})
        metrics.event_attempt(result)
        try:
            await self._db(lambda b: b.query(query, params))
        except StoreError as exc:  # the lease runs out and the row is sent again: a duplicate, never a loss
            log.warning("could not mark a call event %s (%s)", result, exc, extra={"call_sid": row["call_sid"]})

    async def _post(self, client: httpx.AsyncClient, row: dict[str, Any]) -> str | None:
        """One attempt; None when the receiver took it, else why not."""
        body = row["body"].encode()
        scenario = orjson.loads(body)["data"].get("scenario") or ""
        url = self.scenario_urls.get(scenario) or self.url
        if url is None:  # the scenario's events_url was removed since: nowhere to send it
            return f"no events_url for scenario {scenario!r} and no LLC_EVENTS_URL"
        headers = {"content-type": "application/json", "user-agent": "llc-phone events",
                   **self.signer.headers(row["id"], body, time.time())}
        with trio.move_on_after(self.attempt_timeout_s):  # the whole attempt, however the receiver dribbles
            try:
                response = await client.post(url, content=body, headers=headers)
            except httpx.HTTPError as exc:
                return f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
            if 200 <= response.status_code < 300:
                return None
            return f"the receiver answered {response.status_code}"
        return f"no answer within {self.attempt_timeout_s:g} s"
