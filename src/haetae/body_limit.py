"""The size limit on request bodies, answered in the platform's own error shape.

FastAPI 0.16x has a limit of its own (``max_body_size``, Starlette's body limit), but where
a client announces a body over it, Starlette answers with a plain-text 413 whatever the
app's handlers would have said; clients of this API read ``error.code``. So the limit is
this middleware: an announced length over it is refused before anything is read, and every
body is counted as it arrives and refused with ``HaetaeError`` at the first chunk past the
limit, which the app's handlers answer (on lean routes and FastAPI's alike).
Either way the body is never held in memory whole.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from re import Pattern

from starlette.routing import compile_path
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from haetae.errors import HaetaeError

# Answers a request whose announced body is over ``limit`` bytes.
Refusal = Callable[[Scope, Receive, Send, int], Awaitable[None]]


def too_large(limit: int) -> HaetaeError:
    return HaetaeError("request_too_large", field="body", params={"max_kb": limit // 1024})


def _announced_length(scope: Scope) -> int | None:
    for name, value in scope["headers"]:
        if name == b"content-length":
            try:
                return int(value)
            except ValueError:
                return None  # uvicorn refuses these before they reach the app
    return None


class BodyLimit:
    """Pure ASGI middleware: bodies up to ``default`` bytes, or the limit of the path
    template (Starlette's syntax, e.g. ``/v1/cases/{case_id}/evidence``) that matches."""

    def __init__(
        self,
        app: ASGIApp,
        *,
        default: int,
        refuse: Refusal,
        larger: Mapping[str, int] | None = None,
    ) -> None:
        self.app = app
        self.default = default
        self.refuse = refuse
        self.larger: list[tuple[Pattern[str], int]] = [
            (compile_path(path)[0], limit) for path, limit in (larger or {}).items()
        ]

    def limit_for(self, path: str) -> int:
        for pattern, limit in self.larger:
            if pattern.match(path):
                return limit
        return self.default

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit = self.limit_for(scope["path"])
        announced = _announced_length(scope)
        if announced is not None and announced > limit:
            await self.refuse(scope, receive, send, limit)
            return
        # Counted whatever was announced: the length header is the client's word.
        received = 0

        async def counted() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    raise too_large(limit)
            return message

        await self.app(scope, counted, send)
