"""Real receivers on loopback for the notification channels: an SMTP server (aiosmtpd) and
an HTTP provider (aiohttp) that checks the HMAC signature and records what it got."""

from __future__ import annotations

import email
import email.policy
import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from aiohttp import web
from aiosmtpd.controller import Controller

from haetae.notify.channels.http_provider import verify_signature
from tests.helpers import free_port

SECRET = b"provider-secret"


@dataclass
class Receivers:
    mail: list[Any] = field(default_factory=list)
    http: list[dict[str, Any]] = field(default_factory=list)
    answers: dict[str, list[int]] = field(default_factory=dict)  # path → statuses to give


class _MailHandler:
    def __init__(self, into: list[Any]) -> None:
        self.into = into

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        self.into.append(envelope)
        return "250 OK"


def mail_text(envelope: Any) -> str:
    """The plain-text part of a received e-mail, decoded."""
    message = email.message_from_bytes(envelope.content, policy=email.policy.default)
    part = message.get_body(preferencelist=("plain",))  # type: ignore[attr-defined]
    return str(part.get_content())


@asynccontextmanager
async def running_receivers() -> AsyncIterator[tuple[Receivers, str, str]]:
    """(what they got, the SMTP URL, the HTTP provider's base URL: /sms and /push)."""
    got = Receivers()
    smtp_port = free_port()
    controller = Controller(_MailHandler(got.mail), hostname="127.0.0.1", port=smtp_port)
    controller.start()

    async def provider(request: web.Request) -> web.Response:
        raw = await request.read()
        ok = verify_signature(
            SECRET,
            request.headers["X-Haetae-Timestamp"],
            raw,
            request.headers["X-Haetae-Signature"],
            now=datetime.now(UTC).timestamp(),
        )
        if not ok:
            return web.Response(status=401)
        planned = got.answers.get(request.path, [])
        status = planned.pop(0) if planned else 200
        got.http.append({"path": request.path, "status": status, **json.loads(raw)})
        return web.json_response({"message_id": "m-1"}, status=status)

    app = web.Application()
    app.router.add_post("/sms", provider)
    app.router.add_post("/push", provider)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    http_port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    try:
        yield got, f"smtp://127.0.0.1:{smtp_port}", f"http://127.0.0.1:{http_port}"
    finally:
        await runner.cleanup()
        controller.stop()
