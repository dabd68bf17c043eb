"""An issuer that speaks the gateway's ISO 8583 dialect, for tests, demos and load runs.

It decides on a request as soon as it arrives and only then waits ``latency_ms`` (or drops the
connection): a reply that never reaches the gateway leaves the amount held, exactly the case
the gateway's reversal exists for.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, time
from typing import Any

import structlog

from haetae.issuer_sim.cards import CARDS_BY_NUMBER, Behaviour, TestCard
from haetae.payments.connectors.iso8583_codec import (
    MTI_AUTH_REQUEST,
    MTI_REVERSAL_REQUEST,
    CodecError,
    build_reply,
    decode_message,
    frame,
    parse_private_data,
    read_frame,
)
from haetae.security.card_crypto import mask_pan
from haetae.timezones import SEOUL

log = structlog.get_logger(__name__)

Clock = Callable[[], datetime]


@dataclass(slots=True)
class AuthorizationRecord:
    """One 0100 as the issuer saw it. The card number is kept masked."""

    rrn: str
    stan: str
    masked_pan: str
    amount: int
    response_code: str
    approval_code: str | None = None
    answered: bool = True  # False when the reply was withheld (no-answer card) or dropped
    reversed: bool = False  # True once a reversal released the held amount


@dataclass(slots=True)
class _Decision:
    code: str
    approval_code: str | None = None
    additional: str | None = None
    send: bool = True


@dataclass(slots=True)
class _Hold:
    pan: str
    amount: int


class IssuerSimulator:
    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 0,
        *,
        latency_ms: float = 0.0,
        jitter_ms: float = 0.0,
        drop_rate: float = 0.0,
        maintenance: Sequence[tuple[time, time]] = (),
        seed: int | None = None,
        clock: Clock | None = None,
    ) -> None:
        if not 0.0 <= drop_rate <= 1.0:
            raise ValueError("drop_rate must be within [0, 1]")
        self.host = host
        self._requested_port = port
        self.latency_ms = latency_ms
        self.jitter_ms = jitter_ms
        self.drop_rate = drop_rate
        self.maintenance = list(maintenance)
        # Not for secrets: only latency jitter, drops and approval codes.
        self._rng = random.Random(seed)  # noqa: S311
        self._clock: Clock = clock or (lambda: datetime.now(UTC))
        self._server: asyncio.Server | None = None
        self._handlers: set[asyncio.Task[Any]] = set()
        self._balances = {card.number: card.balance for card in CARDS_BY_NUMBER.values()}
        self._holds: dict[str, _Hold] = {}
        self._records: dict[str, AuthorizationRecord] = {}
        self._reversed_rrns: set[str] = set()

        self.authorizations: list[AuthorizationRecord] = []
        self.reversals: list[str] = []  # RRN of every 0400 received, duplicates included
        self.connections_accepted = 0

    # --- lifecycle ---------------------------------------------------------------------------

    @property
    def port(self) -> int:
        """The bound port (the real one when constructed with port 0)."""
        if self._server is None or not self._server.sockets:
            return self._requested_port
        return int(self._server.sockets[0].getsockname()[1])

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._serve, self.host, self._requested_port)

    async def stop(self) -> None:
        if self._server is None:
            return
        self._server.close()
        await self.drop_connections()
        await self._server.wait_closed()
        self._server = None

    async def drop_connections(self) -> None:
        """Close every client connection, as an issuer restart or a firewall would."""
        handlers = list(self._handlers)
        for task in handlers:
            task.cancel()
        await asyncio.gather(*handlers, return_exceptions=True)

    # --- inspection --------------------------------------------------------------------------

    def balance(self, number: str) -> int:
        """Remaining balance of a test card (approved, unreversed amounts are held)."""
        return self._balances[number]

    @property
    def open_connections(self) -> int:
        return len(self._handlers)

    # --- the issuer's decisions --------------------------------------------------------------

    def handle(self, fields: dict[str, str]) -> tuple[bytes | None, bool]:
        """Decide on a decoded request: (reply or None to withhold it, drop the connection)."""
        mti = fields.get("t", "")
        recorded = len(self.authorizations)
        if mti == MTI_AUTH_REQUEST:
            decision = self._authorize(fields)
        elif mti == MTI_REVERSAL_REQUEST:
            decision = self._reverse(fields)
        else:
            decision = _Decision("12")  # invalid transaction
        drop = self.drop_rate > 0 and self._rng.random() < self.drop_rate
        if len(self.authorizations) > recorded and (drop or not decision.send):
            self.authorizations[-1].answered = False
        if not decision.send:
            return None, drop
        try:
            reply = build_reply(
                fields,
                decision.code,
                approval_code=decision.approval_code,
                additional=decision.additional,
            )
        except CodecError:
            return None, True  # not a request we can answer (e.g. a reply sent to us)
        return reply, drop

    def in_maintenance(self) -> bool:
        now = self._clock().astimezone(SEOUL).time().replace(tzinfo=None)
        for start, end in self.maintenance:
            inside = start <= now < end if start <= end else (now >= start or now < end)
            if inside:
                return True
        return False

    def _authorize(self, fields: dict[str, str]) -> _Decision:
        try:
            pan, stan, rrn = fields["2"], fields["11"], fields["37"]
            amount = int(fields["4"])
        except (KeyError, ValueError):
            return _Decision("30")  # format error
        if rrn in self._records or rrn in self._reversed_rrns:
            # An RRN is unique per attempt: a repeat is a duplicate (or a late original whose
            # reversal already arrived) and must never hold money.
            return _Decision("94")
        decision = self._decide(pan, amount, fields)
        record = AuthorizationRecord(
            rrn=rrn,
            stan=stan,
            masked_pan=mask_pan(pan),
            amount=amount,
            response_code=decision.code,
            approval_code=decision.approval_code,
        )
        self._records[rrn] = record
        self.authorizations.append(record)
        if decision.code == "00":
            self._balances[pan] -= amount
            self._holds[rrn] = _Hold(pan, amount)
        log.debug("issuer_sim.authorization", rrn=rrn, pan=record.masked_pan, code=decision.code)
        return decision

    def _decide(self, pan: str, amount: int, fields: dict[str, str]) -> _Decision:
        if self.in_maintenance():
            return _Decision("91")
        card = CARDS_BY_NUMBER.get(pan)
        if card is None:
            return _Decision("14")  # invalid card number
        if card.behaviour is Behaviour.DECLINE:
            return _Decision(card.response_code, additional=card.additional)
        expiry = self._expiry_code(fields.get("14"))
        if expiry:
            return _Decision(expiry)
        try:
            private = parse_private_data(fields.get("48", ""))
        except CodecError:
            return _Decision("30")
        check = _check_holder(card, private)
        if check is not None:
            return check
        if amount > card.single_limit:
            return _Decision("61")
        if amount > self._balances[pan]:
            return _Decision("51")
        return _Decision(
            "00",
            approval_code=f"{self._rng.randrange(1_000_000):06d}",
            send=card.behaviour is not Behaviour.NO_ANSWER,
        )

    def _expiry_code(self, yymm: str | None) -> str | None:
        if not yymm or len(yymm) != 4 or not yymm.isdigit() or not 1 <= int(yymm[2:]) <= 12:
            return "30"
        today = self._clock().astimezone(SEOUL)
        if (2000 + int(yymm[:2]), int(yymm[2:])) < (today.year, today.month):
            return "54"
        return None

    def _reverse(self, fields: dict[str, str]) -> _Decision:
        if self.in_maintenance():
            return _Decision("91")
        rrn = fields.get("37", "")
        self.reversals.append(rrn)
        self._reversed_rrns.add(rrn)
        hold = self._holds.get(rrn)
        # Matched by RRN (and by card when the 0400 carries one); anything else (unknown,
        # already released) changes nothing and is still answered "00", as real issuers do.
        if hold is not None and fields.get("2", hold.pan) == hold.pan:
            del self._holds[rrn]
            self._balances[hold.pan] += hold.amount
            self._records[rrn].reversed = True
        log.debug("issuer_sim.reversal", rrn=rrn, released=hold is not None)
        return _Decision("00")

    # --- the wire ----------------------------------------------------------------------------

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections_accepted += 1
        task = asyncio.current_task()
        if task is not None:
            self._handlers.add(task)
        try:
            while True:
                try:
                    raw = await read_frame(reader)
                    fields = decode_message(raw)
                except (asyncio.IncompleteReadError, ConnectionError):
                    return
                except CodecError:
                    # Without a readable STAN there is nothing to answer to.
                    log.warning("issuer_sim.unreadable_message")
                    return
                reply, drop = self.handle(fields)
                await self._delay()
                if drop:
                    return
                if reply is not None:
                    writer.write(frame(reply))
                    await writer.drain()
        except ConnectionError:
            return
        finally:
            if task is not None:
                self._handlers.discard(task)
            writer.close()
            with contextlib.suppress(ConnectionError):
                await writer.wait_closed()

    async def _delay(self) -> None:
        delay = self.latency_ms
        if self.jitter_ms:
            delay += self._rng.uniform(-self.jitter_ms, self.jitter_ms)
        if delay > 0:
            await asyncio.sleep(delay / 1000)


def _check_holder(card: TestCard, private: dict[str, str]) -> _Decision | None:
    """Card-holder verification: CVC for international cards, birth date and PIN digits for
    Korean domestic ones. None means the checks passed."""
    if card.behaviour is Behaviour.DOMESTIC:
        if private.get("BD") != card.holder_id:
            return _Decision("N7", additional="B")
        if private.get("PW") != card.password_2digits:
            return _Decision("55")
        return None
    if "CV" not in private and "BD" not in private:
        return _Decision("N7", additional="C")
    if card.behaviour is Behaviour.STEP_UP and not private.get("AU", "").startswith("Y"):
        return _Decision("1A")
    return None


async def main(
    host: str = "127.0.0.1",
    port: int = 8583,
    latency_ms: float = 0.0,
    drop_rate: float = 0.0,
    maintenance: Sequence[tuple[time, time]] = (),
    *,
    jitter_ms: float = 0.0,
    seed: int | None = None,
) -> None:
    """Run a simulator until cancelled (``haetae issuer-sim``)."""
    sim = IssuerSimulator(
        host,
        port,
        latency_ms=latency_ms,
        jitter_ms=jitter_ms,
        drop_rate=drop_rate,
        maintenance=maintenance,
        seed=seed,
    )
    await sim.start()
    log.info("issuer_sim.listening", host=host, port=sim.port, latency_ms=latency_ms)
    try:
        await asyncio.Event().wait()
    finally:
        await sim.stop()
        log.info("issuer_sim.stopped", authorizations=len(sim.authorizations))
