"""The ISO 8583 mapping: what goes in which field, and that both sides read it back."""

from __future__ import annotations

import asyncio
import string
from datetime import UTC, datetime, timedelta, timezone

import pytest
from hypothesis import given
from hypothesis import strategies as st

from haetae.payments.connectors import iso8583_codec as codec
from haetae.payments.connectors.base import (
    AuthorizationRequest,
    CardDetails,
    ReversalRequest,
    StepUpResult,
)
from haetae.payments.issuers import new_rrn
from haetae.security.card_crypto import mask_pan

AT = datetime(2024, 12, 31, 16, 30, 5, tzinfo=UTC)  # 01:30:05 on 1 January in Seoul


def make_request(
    *,
    pan: str = "4242424242424242",
    amount: int = 12_345,
    currency: str = "KRW",
    rrn: str = "000000000001",
    merchant_id: str = "mch_demo",
    cvc: str | None = "123",
    birth: str | None = None,
    password: str | None = None,
    authentication: StepUpResult | None = None,
    at: datetime = AT,
) -> AuthorizationRequest:
    card = CardDetails(
        pan=pan,
        exp_month=7,
        exp_year=2031,
        cvc=cvc,
        birth_or_business_no=birth,
        password_2digits=password,
    )
    return AuthorizationRequest(
        card=card,
        amount=amount,
        currency=currency,
        merchant_id=merchant_id,
        rrn=rrn,
        transmitted_at=at,
        authentication=authentication,
    )


def test_authorization_request_fields() -> None:
    fields = codec.decode_message(codec.build_authorization(make_request(), 42))
    assert fields["t"] == "0100"
    assert fields["2"] == "4242424242424242"
    assert fields["3"] == "000000"
    assert fields["4"] == "000000012345"
    assert fields["7"] == "1231163005"  # UTC
    assert fields["11"] == "000042"
    assert fields["12"] == "013005"  # Asia/Seoul, already the next day
    assert fields["13"] == "0101"
    assert fields["14"] == "3107"
    assert fields["22"] == "010"
    assert fields["25"] == "59"
    assert fields["37"] == "000000000001"
    assert fields["41"] == "HAETAE01"
    assert fields["42"] == "mch_demo       "
    assert fields["48"] == "CV=123;"
    assert fields["49"] == "410"


def test_private_data_carries_domestic_and_step_up_fields() -> None:
    request = make_request(
        pan="9410123456789010",
        cvc=None,
        birth="900101",
        password="12",
        authentication=StepUpResult(status="Y", eci="05"),
    )
    fields = codec.decode_message(codec.build_authorization(request, 1))
    assert fields["48"] == "BD=900101;PW=12;AU=Y05;"
    assert codec.parse_private_data(fields["48"]) == {"BD": "900101", "PW": "12", "AU": "Y05"}


def test_no_private_data_means_no_field_48() -> None:
    fields = codec.decode_message(codec.build_authorization(make_request(cvc=None), 1))
    assert "48" not in fields


@pytest.mark.parametrize(
    ("alpha", "numeric"),
    [
        ("KRW", "410"),
        ("USD", "840"),
        ("JPY", "392"),
        ("EUR", "978"),
        ("CNY", "156"),
        ("GBP", "826"),
    ],
)
def test_currency_codes(alpha: str, numeric: str) -> None:
    fields = codec.decode_message(codec.build_authorization(make_request(currency=alpha), 1))
    assert fields["49"] == numeric


def test_local_time_uses_seoul_whatever_the_input_offset() -> None:
    at = AT.astimezone(timezone(timedelta(hours=-5)))
    fields = codec.decode_message(codec.build_authorization(make_request(at=at), 1))
    assert (fields["7"], fields["12"], fields["13"]) == ("1231163005", "013005", "0101")


def test_merchant_field_is_15_chars_and_deterministic() -> None:
    assert codec.merchant_field("m1") == "m1" + " " * 13
    long_a = codec.merchant_field("merchant_0123456789_a")
    long_b = codec.merchant_field("merchant_0123456789_b")
    assert len(long_a) == len(long_b) == 15
    assert long_a != long_b
    assert codec.merchant_field("merchant_0123456789_a") == long_a
    assert len(codec.merchant_field("가맹점")) == 15  # non-ASCII ids still encode


def test_reversal_fields() -> None:
    original = make_request(rrn="ABC123456789")
    later = AT + timedelta(seconds=30)
    raw = codec.build_reversal(
        original, original_stan=42, stan=43, reason="timeout", transmitted_at=later
    )
    fields = codec.decode_message(raw)
    assert fields["t"] == "0400"
    assert fields["2"] == "4242424242424242"
    assert fields["3"] == "000000"
    assert fields["4"] == "000000012345"
    assert fields["7"] == "1231163035"
    assert fields["11"] == "000043"
    assert fields["37"] == "ABC123456789"
    assert fields["48"] == "RS=T;"
    assert fields["49"] == "410"
    assert fields["90"] == "0100" + "000042" + "1231163005" + "0" * 22
    assert len(fields["90"]) == 42
    cancel = codec.build_reversal(
        original, original_stan=42, stan=44, reason="cancel", transmitted_at=later
    )
    assert codec.decode_message(cancel)["48"] == "RS=C;"


def test_reversal_without_card_number() -> None:
    """The gateway may no longer hold the PAN: the 0400 goes out matched by RRN only."""
    original = ReversalRequest(
        rrn="ABC123456789",
        amount=500,
        currency="USD",
        merchant_id="mch_demo",
        original_transmitted_at=AT,
        stan="000077",
    )
    fields = codec.decode_message(
        codec.build_reversal(original, stan=78, reason="cancel", transmitted_at=AT)
    )
    assert "2" not in fields
    assert (fields["4"], fields["37"], fields["49"]) == ("000000000500", "ABC123456789", "840")
    assert fields["90"] == "0100" + "000077" + "1231163005" + "0" * 22
    unknown_stan = ReversalRequest(
        rrn="ABC123456789",
        amount=500,
        currency="USD",
        merchant_id="mch_demo",
        original_transmitted_at=AT,
    )
    fields = codec.decode_message(
        codec.build_reversal(unknown_stan, stan=79, reason="timeout", transmitted_at=AT)
    )
    assert fields["90"][4:10] == "000000"


def test_issuer_reply_round_trip() -> None:
    request = codec.decode_message(codec.build_authorization(make_request(), 7))
    raw = codec.build_reply(request, "00", approval_code="123456")
    reply = codec.parse_authorization_reply(raw)
    assert reply.response_code == "00"
    assert reply.approval_code == "123456"
    assert reply.stan == "000007"
    assert reply.rrn == "000000000001"
    assert reply.additional is None
    assert "2" not in codec.decode_message(raw)  # the PAN is not echoed back


def test_decline_reply_carries_field_44() -> None:
    request = codec.decode_message(codec.build_authorization(make_request(), 7))
    reply = codec.parse_authorization_reply(codec.build_reply(request, "N7", additional="C"))
    assert (reply.response_code, reply.additional, reply.approval_code) == ("N7", "C", None)


def test_reversal_reply_round_trip() -> None:
    raw = codec.build_reversal(
        make_request(), original_stan=1, stan=2, reason="cancel", transmitted_at=AT
    )
    reply_raw = codec.build_reply(codec.decode_message(raw), "00")
    assert codec.decode_message(reply_raw)["t"] == "0410"
    reply = codec.parse_reversal_reply(reply_raw)
    assert (reply.response_code, reply.stan, reply.rrn) == ("00", "000002", "000000000001")
    with pytest.raises(codec.CodecError):
        codec.parse_authorization_reply(reply_raw)  # an 0410 is not an 0110


def test_garbage_is_a_codec_error() -> None:
    with pytest.raises(codec.CodecError):
        codec.decode_message(b"0110zz")
    with pytest.raises(codec.CodecError):
        codec.parse_authorization_reply(codec.build_reply({"t": "0100"}, "00"))  # no 11/37


@pytest.mark.parametrize(
    "request_",
    [
        make_request(currency="XYZ"),
        make_request(amount=-1),
        make_request(amount=10**12),
        make_request(rrn="short"),
        make_request(pan="4242abcd42424242"),
        make_request(cvc="1;2"),
        make_request(at=datetime(2024, 1, 1)),  # naive
    ],
)
def test_invalid_requests_are_rejected(request_: AuthorizationRequest) -> None:
    with pytest.raises(codec.CodecError):
        codec.build_authorization(request_, 1)


def test_codec_errors_never_quote_card_data() -> None:
    with pytest.raises(codec.CodecError) as info:
        codec.build_authorization(make_request(pan="42424242424242424242"), 1)
    assert "4242" not in str(info.value)


def test_reply_mti() -> None:
    assert codec.reply_mti("0100") == "0110"
    assert codec.reply_mti("0400") == "0410"
    with pytest.raises(codec.CodecError):
        codec.reply_mti("0110")


def test_mask_pan() -> None:
    assert mask_pan("4242424242424242") == "424242******4242"
    assert mask_pan("378282246310005") == "378282*****0005"
    assert mask_pan("123") == "****"


async def test_framing_round_trip() -> None:
    reader = asyncio.StreamReader()
    reader.feed_data(codec.frame(b"hello") + codec.frame(b"") + codec.frame(b"x" * 300))
    reader.feed_eof()
    assert codec.frame(b"x" * 300)[:2] == b"\x01\x2c"
    assert await codec.read_frame(reader) == b"hello"
    assert await codec.read_frame(reader) == b""
    assert await codec.read_frame(reader) == b"x" * 300
    with pytest.raises(asyncio.IncompleteReadError):
        await codec.read_frame(reader)


def test_frame_too_long() -> None:
    with pytest.raises(codec.CodecError):
        codec.frame(b"x" * 65_536)


RRN_CHARS = string.ascii_uppercase + string.digits


@given(
    amount=st.integers(min_value=0, max_value=codec.MAX_AMOUNT),
    stan=st.integers(min_value=0, max_value=999_999),
    rrn=st.text(alphabet=RRN_CHARS, min_size=12, max_size=12),
)
def test_round_trip_property(amount: int, stan: int, rrn: str) -> None:
    raw = codec.build_authorization(make_request(amount=amount, rrn=rrn), stan)
    fields = codec.decode_message(raw)
    assert int(fields["4"]) == amount
    assert fields["11"] == f"{stan:06d}"
    reply = codec.parse_authorization_reply(codec.build_reply(fields, "00", approval_code="A12345"))
    assert (reply.stan, reply.rrn) == (f"{stan:06d}", rrn)

    reversal = codec.decode_message(
        codec.build_reversal(
            make_request(amount=amount, rrn=rrn),
            original_stan=stan,
            stan=(stan + 1) % 1_000_000,
            reason="timeout",
            transmitted_at=AT,
        )
    )
    assert int(reversal["4"]) == amount
    assert reversal["90"][4:10] == f"{stan:06d}"


@given(
    st.dictionaries(
        st.text(alphabet=string.ascii_uppercase, min_size=2, max_size=2),
        st.text(alphabet=string.ascii_letters + string.digits, max_size=20),
        max_size=5,
    )
)
def test_private_data_property(pairs: dict[str, str]) -> None:
    assert codec.parse_private_data(codec.format_private_data(pairs)) == pairs


def test_new_retrieval_reference_numbers_use_every_character_in_every_position() -> None:
    """Field 37: twelve characters of 0-9 and A-Z, drawn uniformly (they must not collide)."""
    rrns = [new_rrn() for _ in range(3_000)]
    assert all(len(rrn) == 12 for rrn in rrns)
    alphabet = set(string.digits + string.ascii_uppercase)
    for position in range(12):  # about 83 of each character per position
        assert {rrn[position] for rrn in rrns} == alphabet
    assert len(set(rrns)) == len(rrns)
