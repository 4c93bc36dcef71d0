"""JSON logs: every record one line of JSON; one line per request (`pingyi.access`).

The access line names the request, not its content: request id, method, route template
(`/graphql`, never the raw path), status, GraphQL operation name, outcome code, the
principal's account id and home tenant id, duration. No variables, query text,
username, client address or token is ever put in it, so no personal data can reach it
by construction; and every other record's message has been through
`service.redaction` (ID-card and phone numbers, hashes, secrets) before it gets here.

`pingyi serve` installs this through uvicorn's `log_config` (`uvicorn_log_config`),
so uvicorn's own lines and every worker's are JSON too; `PINGYI_LOG_FORMAT=text`
keeps plain lines for a terminal.
"""

from __future__ import annotations

import logging
import time
from datetime import UTC, datetime
from typing import Any

import orjson

ACCESS_LOGGER = "pingyi.access"
access_log = logging.getLogger(ACCESS_LOGGER)

# LogRecord attributes that are not extra fields of the caller
_STANDARD = frozenset(
    vars(logging.LogRecord("x", logging.INFO, "x", 0, "x", None, None)).keys()
) | {"message", "asctime", "taskName", "color_message"}


class JsonFormatter(logging.Formatter):
    """`{"ts", "level", "logger", "msg", ...extra fields, "exc"}` as one line."""

    def format(self, record: logging.LogRecord) -> str:
        if isinstance(record, _AccessRecord):
            return record.line  # made whole by `access_line`
        line: dict[str, Any] = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": record.getMessage(),
        }
        for key, value in record.__dict__.items():
            if key not in _STANDARD and not key.startswith("_"):
                line[key] = value
        if record.exc_info and record.exc_info[0] is not None:
            line["exc"] = self.formatException(record.exc_info)
        elif record.exc_text:  # already rendered (and redacted) by service.redaction
            line["exc"] = record.exc_text
        if record.stack_info:
            line["stack"] = record.stack_info
        return orjson.dumps(line, default=str).decode()


class _AccessRecord(logging.LogRecord):
    """A request's line, as JSON text already (`line`), and as its message for a text
    formatter. Made from a template, not through `Logger.info` or LogRecord's own
    constructor: their per-record work (the caller's frame, process and thread names,
    the redaction factory's regular expressions over a line that holds no free text)
    was most of the line's cost (bench/observe.py)."""

    line: str

    def __init__(self, line: str, created: float) -> None:
        self.__dict__.update(_TEMPLATE)
        self.msg = self.line = line
        self.created = created
        self.msecs = (created - int(created)) * 1000
        self.relativeCreated = (created - logging._startTime) * 1000


_TEMPLATE = dict(vars(logging.LogRecord(ACCESS_LOGGER, logging.INFO, "", 0, "", None, None)))
_TEMPLATE.update(processName=None, threadName=None, taskName=None)


class _Clock:
    """UTC timestamps with milliseconds; the part up to the second made once a second
    (datetime's isoformat was ~6 µs a line here)."""

    second = -1
    prefix = ""

    @classmethod
    def stamp(cls, now: float) -> str:
        second = int(now)
        if second != cls.second:
            cls.prefix = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(second))
            cls.second = second
        return f"{cls.prefix}.{int((now - second) * 1000):03d}+00:00"


def access_line(
    *,
    request_id: str,
    method: str,
    path: str,
    status: int,
    operation: str | None,
    outcome: str,
    account_id: int | None,
    tenant_id: int | None,
    seconds: float,
) -> None:
    """Write the request's line (if the access logger is on at INFO)."""
    if not access_log.isEnabledFor(logging.INFO):
        return
    now = time.time()
    fields = {
        "ts": _Clock.stamp(now),
        "level": "info",
        "logger": ACCESS_LOGGER,
        "msg": "request",
        "request_id": request_id,
        "method": method,
        "path": path,
        "status": status,
        "operation": operation,
        "outcome": outcome,
        "account_id": account_id,
        "tenant_id": tenant_id,
        "duration_ms": round(seconds * 1000, 3),
    }
    line = orjson.dumps(fields).decode()
    access_log.handle(_AccessRecord(line, now))


def uvicorn_log_config(log_format: str = "json", access: bool = True) -> dict[str, Any]:
    """A `logging.config.dictConfig` for `pingyi serve` (uvicorn applies it in every
    worker): the root, uvicorn's and Pingyi's loggers to stderr at INFO, as JSON
    lines or plain text; the access lines on or off."""
    formatter: dict[str, Any] = (
        {"()": "service.observability.logs.JsonFormatter"}
        if log_format == "json"
        else {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"}
    )
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {"pingyi": formatter},
        "handlers": {
            "stderr": {
                "class": "logging.StreamHandler",
                "formatter": "pingyi",
                "stream": "ext://sys.stderr",
            }
        },
        "root": {"handlers": ["stderr"], "level": "INFO"},
        "loggers": {
            # uvicorn's loggers carry handlers of their own by default: through the root
            "uvicorn": {"handlers": [], "level": "INFO", "propagate": True},
            "uvicorn.error": {"handlers": [], "level": "INFO", "propagate": True},
            "uvicorn.access": {"handlers": [], "level": "WARNING", "propagate": True},
            # a line per outgoing request (the WeChat provider) is noise at INFO
            "httpx": {"level": "WARNING"},
            "httpcore": {"level": "WARNING"},
            ACCESS_LOGGER: {"level": "INFO" if access else "WARNING"},
        },
    }
