"""The mediator's log lines: plain text, or one JSON object per line (`MEDIATOR_LOG_FORMAT=json`) that names the
OpenHIM transaction, the channel and the journal's push of whatever the line is about.

What a push is about is set around its handling (`about`), in the thread that handles it, and every line logged
meanwhile carries it, the delivery's and DHIS2 client's included. Messages never hold a value of a record: the
fields added here are ids and channel names only."""

from __future__ import annotations

import logging
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from contextvars import ContextVar
from datetime import UTC, datetime
from types import MappingProxyType
from typing import Any

import orjson

TEXT_FORMAT = "%(asctime)s %(levelname)s [%(process)d] %(name)s: %(message)s"
_NOTHING: Mapping[str, Any] = MappingProxyType({})
_ABOUT: ContextVar[Mapping[str, Any]] = ContextVar("mediator_log_about", default=_NOTHING)


@contextmanager
def about(**fields: Any) -> Iterator[None]:
    """Lines logged inside name these (those given as None are left as they were)."""
    token = _ABOUT.set({**_ABOUT.get(), **{k: v for k, v in fields.items() if v is not None}})
    try:
        yield
    finally:
        _ABOUT.reset(token)


def also(**fields: Any) -> None:
    """Add to what the lines of the current `about` name, once learnt (a push's id once it is kept)."""
    _ABOUT.set({**_ABOUT.get(), **{k: v for k, v in fields.items() if v is not None}})


class JsonLines(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        doc: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "pid": record.process,
            "thread": record.threadName,
            "message": record.getMessage(),
        }
        doc.update(_ABOUT.get())
        if record.exc_info:
            doc["error"] = record.exc_info[0].__name__ if record.exc_info[0] else None
            doc["traceback"] = self.formatException(record.exc_info)
        return orjson.dumps(doc, default=str).decode()


def formatter(fmt: str) -> logging.Formatter:
    return JsonLines() if fmt == "json" else logging.Formatter(TEXT_FORMAT)


def configure(level: str, fmt: str) -> None:
    """The root logger's one handler, on standard error, in this format."""
    handler = logging.StreamHandler()
    handler.setFormatter(formatter(fmt))
    logging.basicConfig(level=level.upper(), handlers=[handler], force=True)


def gunicorn_config(level: str, fmt: str) -> dict[str, Any]:
    """gunicorn's own loggers (its master and workers' lines) in the same format."""
    factory = "mediator.ops.logs.JsonLines" if fmt == "json" else "logging.Formatter"
    form: dict[str, Any] = {"()": factory} if fmt == "json" else {"format": TEXT_FORMAT}
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {"mediator": form},
        "handlers": {"stderr": {"class": "logging.StreamHandler", "formatter": "mediator"}},
        "root": {"level": level.upper(), "handlers": ["stderr"]},
        "loggers": {
            "gunicorn.error": {"level": level.upper(), "handlers": ["stderr"], "propagate": False},
            # gunicorn turns its access log on with a logging config: its lines name users, addresses and query
            # strings (a record's key in an auditor's link), so it stays off.
            "gunicorn.access": {"level": "CRITICAL", "handlers": [], "propagate": False},
        },
    }
