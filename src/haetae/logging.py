"""Structured logs (structlog, JSON to stdout), with card numbers scrubbed as a last line
of defence: code never logs a PAN, and this makes sure a mistake does not leak one."""

from __future__ import annotations

import logging
import re
import sys
from collections.abc import MutableMapping
from typing import Any

import structlog
from stdnum import luhn

# 12-19 digits, optionally grouped by spaces or dashes.
_PAN_LIKE = re.compile(r"(?<!\d)(?:\d[ -]?){11,18}\d(?!\d)")


def scrub_pans(text: str) -> str:
    def _mask(match: re.Match[str]) -> str:
        digits = re.sub(r"[ -]", "", match.group(0))
        if len(digits) >= 12 and luhn.is_valid(digits):
            return f"{digits[:6]}{'*' * (len(digits) - 10)}{digits[-4:]}"
        return match.group(0)

    return _PAN_LIKE.sub(_mask, text)


def _scrub(value: Any) -> Any:
    if isinstance(value, str):
        return scrub_pans(value)
    if isinstance(value, dict):
        return {k: _scrub(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return type(value)(_scrub(v) for v in value)
    return value


def _scrub_processor(
    _logger: Any, _method: str, event_dict: MutableMapping[str, Any]
) -> MutableMapping[str, Any]:
    return {key: _scrub(value) for key, value in event_dict.items()}


def configure_logging(level: str = "INFO", *, json: bool = True, cache: bool = False) -> None:
    """``cache``: for a long-running process configured once at start. Each module's logger
    is then built on its first message and kept; otherwise it is built anew for every
    message, filtered out or not (several per payment). Tests, which configure logging
    again, leave it off."""
    renderer: Any = (
        structlog.processors.JSONRenderer(ensure_ascii=False)
        if json
        else structlog.dev.ConsoleRenderer(colors=False)
    )
    shared: list[Any] = [
        structlog.contextvars.merge_contextvars,
        structlog.processors.add_log_level,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
        structlog.processors.format_exc_info,
        _scrub_processor,
    ]
    structlog.configure(
        processors=[*shared, renderer],
        wrapper_class=structlog.make_filtering_bound_logger(logging.getLevelName(level.upper())),
        logger_factory=structlog.PrintLoggerFactory(sys.stdout),
        cache_logger_on_first_use=cache,
    )
    # Libraries that log through the standard library (uvicorn, SQLAlchemy) go the same way.
    handler = logging.StreamHandler(sys.stdout)
    handler.setFormatter(
        structlog.stdlib.ProcessorFormatter(
            processors=[structlog.stdlib.ProcessorFormatter.remove_processors_meta, renderer],
            foreign_pre_chain=shared,
        )
    )
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    for name in ("aiosqlite", "asyncio"):  # per-statement chatter, even at DEBUG
        logging.getLogger(name).setLevel(max(logging.WARNING, root.level))
    for name in ("uvicorn", "uvicorn.error", "uvicorn.access"):
        logging.getLogger(name).handlers[:] = []
        logging.getLogger(name).propagate = True
