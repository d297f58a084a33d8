"""Log levels match severity: a refused POST /calls the operator must act on is a WARNING, not silence."""

from __future__ import annotations

import logging

import trio

from tests.helpers.outbound_stack import start_outbound


class Lines(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


async def test_refused_calls_are_logged_at_their_severity(nursery: trio.Nursery) -> None:
    lines = Lines()
    logger = logging.getLogger("llc.web.outbound")
    logger.addHandler(lines)
    old_level = logger.level
    logger.setLevel(logging.DEBUG)  # setLevel, not .level: it clears the enabled-for cache
    try:
        stack = await start_outbound(nursery, settings={"max_calls": 1})
        stack.state.settings = stack.state.settings.with_overrides(max_calls=0)  # full: every call is refused
        resp = await stack.dial(scenario="default")
        assert resp.status_code == 503
        refused = [r for r in lines.records if "POST /calls refused (503)" in r.getMessage()]
        assert refused and refused[0].levelno == logging.WARNING and "LLC_MAX_CALLS" in refused[0].getMessage()

        stack.state.settings = stack.state.settings.with_overrides(max_calls=5)
        resp = await stack.dial(scenario="reminder")  # the caller's mistake: INFO, with the reason
        assert resp.status_code == 400
        bad = [r for r in lines.records if "POST /calls refused (400)" in r.getMessage()]
        assert bad and bad[0].levelno == logging.INFO and "when" in bad[0].getMessage()
    finally:
        logger.removeHandler(lines)
        logger.setLevel(old_level)
