"""Customer notice templates (Jinja2, Korean and English) and Korean SMS/LMS sizing.

Every notice kind is a folder ``templates/<kind>/<locale>/`` holding one template per part:

- ``title.j2``  the subject / push title (one line)
- ``short.j2``  the SMS or push text (one line; sized with :func:`sms_type`)
- ``long.j2``   the e-mail text body
- ``html.j2``   the e-mail HTML body (autoescaped; inline styles, no external assets)
- ``banner.j2`` optional: one line for the in-app banner

Folders whose names start with ``_`` hold shared layouts and are not notice kinds. Two context
names are reserved: :meth:`NoticeTemplates.render` sets ``locale`` (the filters below read it)
and, for the HTML part, ``notice_title`` (the rendered title, escaped by the layout).

Filters:

- ``krw`` / ``money(currency)``: minor units to text, via :func:`haetae.catalog.format_money`
  (``15000`` -> ``15,000원`` / ``KRW 15,000``).
- ``seoul_datetime`` / ``seoul_date`` / ``seoul_time``: an aware datetime shown in Asia/Seoul
  (``2026년 11월 22일 09:30`` / ``22 Nov 2026, 09:30 KST``); ``with_year=False`` drops the
  year (for SMS). A naive datetime is refused rather than guessed.
- ``certificate_name``: ``joint`` / ``financial`` -> 공동인증서 / 금융인증서 (joint / financial
  certificate).
- ``renewal_method``: ``app`` / ``web`` / ``auto`` -> how a certificate was renewed.
- ``clip_bytes(n)`` / ``sms_bytes``: cut a value (e.g. a merchant name) to ``n`` SMS bytes,
  ending in "…" / count its SMS bytes.
- ``http_url``: passes an absolute http(s) URL, refuses anything else (``javascript:``).

SMS sizing follows the Korean carriers' rule: a message that fits in 90 bytes is an SMS, a longer
one an LMS of at most 2,000 bytes. Bytes are counted as the carriers count them, in EUC-KR, where
ASCII takes 1 byte and Hangul 2. We encode with CP949 (Microsoft's extension of EUC-KR, what
Korean phones and SMS gateways actually use): its byte widths are identical to EUC-KR for every
character EUC-KR has, and it also covers the 8,822 modern Hangul syllables missing from KS X 1001
(e.g. "똠"), which Python's ``euc_kr`` codec would spell as 8-byte composition sequences.
A character neither can encode (an emoji, "₩") counts as 1 byte: we encode with
``errors="replace"``, and carriers likewise substitute such characters with "?" or drop them.
Templates therefore avoid them.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, MutableMapping
from dataclasses import dataclass
from datetime import datetime
from functools import cache
from pathlib import Path
from typing import Any, Literal
from urllib.parse import urlsplit

import jinja2

from haetae.catalog import Locale, format_money
from haetae.timezones import SEOUL

SMS_MAX_BYTES = 90
LMS_MAX_BYTES = 2000
ELLIPSIS = "…"  # 2 bytes in EUC-KR (0xA1A6)
_SMS_ENCODING = "cp949"  # EUC-KR byte widths; see the module docstring

TEMPLATE_DIR = Path(__file__).parent / "templates"
PARTS = ("title", "short", "long", "html", "banner")
_ONE_LINE_PARTS = ("title", "short", "banner")
_LOCALES: tuple[Locale, ...] = ("ko", "en")

_MONTHS_EN = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")

CERTIFICATE_NAMES: dict[str, dict[Locale, str]] = {
    "joint": {"ko": "공동인증서", "en": "joint certificate"},
    "financial": {"ko": "금융인증서", "en": "financial certificate"},
}
RENEWAL_METHODS: dict[str, dict[Locale, str]] = {
    "app": {"ko": "해태뱅크 앱", "en": "in the Haetae Bank app"},
    "web": {"ko": "해태뱅크 인터넷뱅킹", "en": "in Haetae Bank internet banking"},
    "auto": {"ko": "자동 갱신", "en": "automatically"},
}


@dataclass(frozen=True)
class RenderedNotice:
    kind: str
    title: str
    short: str  # SMS / push text
    long: str  # e-mail text body
    html: str  # e-mail HTML body
    banner: str | None  # one line for the in-app banner, or None


# --- SMS sizing ---------------------------------------------------------------------------


def _char_bytes(char: str) -> int:
    return len(char.encode(_SMS_ENCODING, errors="replace"))


def euc_kr_length(text: str) -> int:
    """Bytes ``text`` takes in a Korean SMS: ASCII 1, Hangul 2, unencodable (emoji) 1."""
    return len(text.encode(_SMS_ENCODING, errors="replace"))


def sms_type(text: str) -> Literal["sms", "lms"]:
    """``sms`` if ``text`` fits in 90 EUC-KR bytes, else ``lms`` (cut it with :func:`fit_lms`)."""
    return "sms" if euc_kr_length(text) <= SMS_MAX_BYTES else "lms"


def clip_bytes(text: str, max_bytes: int) -> str:
    """Cut ``text`` on a character boundary so that it, with a final "…", fits ``max_bytes``.

    Text that already fits is returned unchanged. Boundaries are code points: a Hangul syllable
    is never split, though a combining sequence or an emoji ZWJ sequence could be.
    """
    if euc_kr_length(text) <= max_bytes:
        return text
    budget = max_bytes - euc_kr_length(ELLIPSIS)
    if budget < 0:
        raise ValueError(f"max_bytes={max_bytes} leaves no room for the ellipsis")
    used = 0
    end = 0
    for index, char in enumerate(text):
        size = _char_bytes(char)
        if used + size > budget:
            break
        used += size
        end = index + 1
    return text[:end].rstrip() + ELLIPSIS


def fit_lms(text: str) -> str:
    """``text`` cut to the LMS limit (2,000 EUC-KR bytes), ending in "…" when it was cut."""
    return clip_bytes(text, LMS_MAX_BYTES)


# --- filters ------------------------------------------------------------------------------


def _defined(value: Any) -> Any:
    """Fail a filter given a missing variable as StrictUndefined does (UndefinedError)."""
    if isinstance(value, jinja2.Undefined):
        str(value)  # StrictUndefined raises UndefinedError naming the variable
        raise jinja2.UndefinedError("a filter was given an undefined value")
    return value


def _locale_of(context: jinja2.runtime.Context) -> Locale:
    locale: object = context.get("locale")
    if locale == "ko":
        return "ko"
    if locale == "en":
        return "en"
    raise ValueError(f"template context has no valid 'locale' (got {locale!r})")


def _seoul(value: datetime) -> datetime:
    if not isinstance(value, datetime):
        raise TypeError(f"expected a datetime, got {type(value).__name__}")
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValueError("refusing to show a naive datetime: give it a timezone (UTC)")
    return value.astimezone(SEOUL)


def format_seoul_date(value: datetime, locale: Locale, *, with_year: bool = True) -> str:
    """``2026년 11월 22일`` / ``22 Nov 2026`` (``11월 22일`` / ``22 Nov`` without the year)."""
    local = _seoul(value)
    if locale == "ko":
        day = f"{local.month}월 {local.day}일"
        return f"{local.year}년 {day}" if with_year else day
    day = f"{local.day} {_MONTHS_EN[local.month - 1]}"
    return f"{day} {local.year}" if with_year else day


def format_seoul_time(value: datetime, locale: Locale) -> str:
    """``09:30`` / ``09:30 KST`` (24-hour clock)."""
    local = _seoul(value)
    return f"{local:%H:%M}" if locale == "ko" else f"{local:%H:%M} KST"


def format_seoul_datetime(value: datetime, locale: Locale, *, with_year: bool = True) -> str:
    """``2026년 11월 22일 09:30`` / ``22 Nov 2026, 09:30 KST``."""
    date = format_seoul_date(value, locale, with_year=with_year)
    time = format_seoul_time(value, locale)
    return f"{date} {time}" if locale == "ko" else f"{date}, {time}"


def _lookup(table: dict[str, dict[Locale, str]], what: str, key: object, locale: Locale) -> str:
    try:
        return table[str(key)][locale]
    except KeyError:
        raise ValueError(f"unknown {what} {key!r}; expected one of {sorted(table)}") from None


@jinja2.pass_context
def _krw_filter(context: jinja2.runtime.Context, amount: int) -> str:
    return format_money(int(_defined(amount)), "KRW", _locale_of(context))


@jinja2.pass_context
def _money_filter(context: jinja2.runtime.Context, amount: int, currency: str) -> str:
    return format_money(int(_defined(amount)), _defined(currency), _locale_of(context))


@jinja2.pass_context
def _seoul_datetime_filter(
    context: jinja2.runtime.Context, value: datetime, with_year: bool = True
) -> str:
    return format_seoul_datetime(_defined(value), _locale_of(context), with_year=with_year)


@jinja2.pass_context
def _seoul_date_filter(
    context: jinja2.runtime.Context, value: datetime, with_year: bool = True
) -> str:
    return format_seoul_date(_defined(value), _locale_of(context), with_year=with_year)


@jinja2.pass_context
def _seoul_time_filter(context: jinja2.runtime.Context, value: datetime) -> str:
    return format_seoul_time(_defined(value), _locale_of(context))


@jinja2.pass_context
def _certificate_name_filter(context: jinja2.runtime.Context, kind: str) -> str:
    return _lookup(CERTIFICATE_NAMES, "certificate kind", _defined(kind), _locale_of(context))


@jinja2.pass_context
def _renewal_method_filter(context: jinja2.runtime.Context, method: str) -> str:
    return _lookup(RENEWAL_METHODS, "renewal method", _defined(method), _locale_of(context))


def _clip_bytes_filter(value: object, max_bytes: int) -> str:
    return clip_bytes(str(_defined(value)), max_bytes)


def _sms_bytes_filter(value: object) -> int:
    return euc_kr_length(str(_defined(value)))


def _http_url_filter(value: object) -> str:
    """Refuse anything but an absolute http(s) URL (no ``javascript:`` in a link)."""
    url = str(_defined(value))
    if urlsplit(url).scheme.lower() not in ("https", "http") or not urlsplit(url).netloc:
        raise ValueError(f"not an absolute http(s) URL: {url!r}")
    return url


# --- templates ----------------------------------------------------------------------------


def _autoescape(template_name: str | None) -> bool:
    """Escape the HTML parts: ``html.j2`` (and any ``*.html`` / ``*.html.j2``), nothing else.

    ``select_autoescape(["html"])`` alone would not match ``<kind>/<locale>/html.j2``.
    """
    if template_name is None:
        return False
    base = template_name.rsplit("/", 1)[-1].lower()
    return base == "html.j2" or base.endswith((".html", ".htm", ".html.j2"))


class _Environment(jinja2.Environment):
    """Gives each template its globals as a plain dict, copied when it is loaded.

    Jinja's default is a ChainMap over the environment's globals, so that changing those
    later reaches loaded templates; ours never change after start-up, and iterating a
    ChainMap to build every render's context made a short notice's render about a third
    slower (the dispatcher renders one per delivery)."""

    def make_globals(self, d: MutableMapping[str, Any] | None) -> MutableMapping[str, Any]:
        return {**self.globals, **(d or {})}


class NoticeTemplates:
    """Renders notice kinds from ``templates/<kind>/<locale>/*.j2``; one environment each."""

    def __init__(self, directory: Path = TEMPLATE_DIR) -> None:
        self._directory = directory
        self._env = _Environment(
            loader=jinja2.FileSystemLoader(directory),
            # select_autoescape(["html"]) would not match "<kind>/<locale>/html.j2".
            autoescape=_autoescape,  # escapes every HTML part, see _autoescape
            undefined=jinja2.StrictUndefined,
            trim_blocks=True,
            lstrip_blocks=True,
            auto_reload=False,
        )
        self._env.filters.update(
            krw=_krw_filter,
            money=_money_filter,
            seoul_datetime=_seoul_datetime_filter,
            seoul_date=_seoul_date_filter,
            seoul_time=_seoul_time_filter,
            certificate_name=_certificate_name_filter,
            renewal_method=_renewal_method_filter,
            clip_bytes=_clip_bytes_filter,
            sms_bytes=_sms_bytes_filter,
            http_url=_http_url_filter,
        )
        self._names = frozenset(self._env.list_templates(extensions=["j2"]))
        # Loaded templates, kept here: they never change (auto_reload is off), and Jinja's
        # own cache takes a lock and an LRU update on every look-up.
        self._loaded: dict[str, jinja2.Template] = {}
        self._kinds = sorted(
            {
                name.split("/", 1)[0]
                for name in self._names
                if "/" in name and not name.startswith(("_", "."))
            }
        )

    @property
    def environment(self) -> jinja2.Environment:
        return self._env

    def kinds(self) -> list[str]:
        return list(self._kinds)

    def render(self, kind: str, locale: Locale, context: Mapping[str, Any]) -> RenderedNotice:
        """Render every part of ``kind``; a missing context variable raises UndefinedError."""
        parts = self.render_parts(kind, locale, context, PARTS)
        return RenderedNotice(
            kind=kind,
            title=parts["title"] or "",
            short=parts["short"] or "",
            long=parts["long"] or "",
            html=parts["html"] or "",
            banner=parts["banner"] or None,
        )

    def render_parts(
        self, kind: str, locale: Locale, context: Mapping[str, Any], parts: Collection[str]
    ) -> dict[str, str | None]:
        """Render only ``parts`` of ``kind`` (and the title, which the HTML part shows): what
        one channel sends, without the cost of the others (the HTML e-mail for an SMS).
        A missing ``banner`` is None; any other missing part raises KeyError."""
        if kind not in self._kinds:
            raise KeyError(f"notice kind {kind!r} has no templates; known kinds: {self._kinds}")
        if locale not in _LOCALES:
            raise ValueError(f"unsupported locale {locale!r}; expected one of {_LOCALES}")
        unknown = set(parts) - set(PARTS)
        if unknown:
            raise ValueError(f"unknown template parts {sorted(unknown)}; expected some of {PARTS}")
        values = {**context, "locale": locale}
        rendered: dict[str, str | None] = {}
        for part in PARTS:  # in this order: the title comes before the HTML that shows it
            if part not in parts and not (part == "title" and "html" in parts):
                continue
            name = f"{kind}/{locale}/{part}.j2"
            if name not in self._names:
                if part == "banner":
                    rendered[part] = None
                    continue
                raise KeyError(f"notice kind {kind!r} has no {part} template for {locale!r}")
            if part == "html":
                values["notice_title"] = rendered["title"]
            template = self._loaded.get(name)
            if template is None:
                template = self._loaded[name] = self._env.get_template(name)
            text = template.render(values)
            one_line = part in _ONE_LINE_PARTS
            rendered[part] = " ".join(text.split()) if one_line else text.strip() + "\n"
        return rendered


@cache
def notice_templates() -> NoticeTemplates:
    """The shared instance over the packaged templates."""
    return NoticeTemplates()
