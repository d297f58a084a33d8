"""Structured logging: every line of a call carries call_sid (and stream_sid once known).

A call binds a mutable field dict into a ContextVar once; Trio tasks copy the context when
spawned, so they all share that same dict and see stream_sid as soon as ``start`` arrives.
JSON lines for machines (journald, pm2), a compact ``key=value`` form on a terminal.
"""

from __future__ import annotations

import logging
import sys
import time
from contextvars import ContextVar
from typing import Any

import orjson

CALL_FIELDS: ContextVar[dict[str, Any] | None] = ContextVar("llc_call_fields", default=None)
_STANDARD = set(logging.LogRecord("", 0, "", 0, "", (), None).__dict__) | {"message", "asctime"}


def bind_call(**fields: Any) -> dict[str, Any]:
    """Start a call's logging context; returns the dict to update (e.g. with stream_sid)."""
    current = {k: v for k, v in fields.items() if v is not None}
    CALL_FIELDS.set(current)
    return current


def _fields(record: logging.LogRecord) -> dict[str, Any]:
    out: dict[str, Any] = dict(CALL_FIELDS.get() or {})
    out.update({k: v for k, v in record.__dict__.items() if k not in _STANDARD})
    return out


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        data: dict[str, Any] = {
            "ts": round(record.created, 3),
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": record.getMessage(),
        }
        data.update(_fields(record))
        if record.exc_info:
            data["exc"] = self.formatException(record.exc_info)
        return orjson.dumps(data, default=str).decode()


class TextFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        stamp = time.strftime("%H:%M:%S", time.localtime(record.created))
        extra = " ".join(f"{k}={v}" for k, v in _fields(record).items())
        line = f"{stamp} {record.levelname:<7} {record.getMessage()}" + (f"  {extra}" if extra else "")
        if record.exc_info:
            line += "\n" + self.formatException(record.exc_info)
        return line


def setup_logging(fmt: str = "auto", level: str = "INFO", stream: Any = None, log_file: str | None = None) -> None:
    """Log to ``stream`` (stderr: journald, pm2) and, with LLC_LOG_FILE, also as JSON lines to that file.

    The file is always JSON whatever LLC_LOG_FORMAT says: ``llc-phone doctor`` reads it back.
    """
    stream = stream or sys.stderr
    if fmt == "auto":
        fmt = "text" if getattr(stream, "isatty", lambda: False)() else "json"
    handler = logging.StreamHandler(stream)
    handler.setFormatter(TextFormatter() if fmt == "text" else JsonFormatter())
    handlers: list[logging.Handler] = [handler]
    if log_file:
        file_handler = logging.FileHandler(log_file, encoding="utf-8")
        file_handler.setFormatter(JsonFormatter())
        handlers.append(file_handler)
    root = logging.getLogger("llc")
    for old in root.handlers:
        if isinstance(old, logging.FileHandler):
            old.close()
    root.handlers[:] = handlers
    root.setLevel(level)
    root.propagate = False
    # Hypercorn's per-request access lines would cost CPU on every webhook and say nothing new.
    logging.getLogger("hypercorn.access").disabled = True


def get_logger(name: str) -> logging.Logger:
    return logging.getLogger(f"llc.{name}")
