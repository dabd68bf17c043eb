"""The feature store on Redis, for several processes sharing one history (at scale).

Per track and entity key:

* ``{prefix}:{track}:{key}`` a sorted set of the events still inside some window, scored by
  time (µs), each member the event's measures and distinct-counted values as compact JSON
  (``[uid, time, [measures], [values]]``); trimmed on every write and expiring (TTL) one day
  after the longest window (with its delay) has passed;
* ``{prefix}:{track}:{key}:all`` a hash with the all-history sums (``s0``, ``s1``...) and
  the time of the last event (``last``), expiring after ``history_ttl`` without events;
* ``{prefix}:{track}:{key}:all:{n}`` a set per all-history distinct count.

One run of a script (``redis_windows``) reads every key of an event (its window sums, kept
running in Redis, and its all-history hash and sets), and one run counts the event:
:meth:`features` and :meth:`update` are one command each, :meth:`process` one for both,
atomic as any script. The features are made from those sums client-side by the same readers
as the in-process store's. The member's ``uid`` is the event id when there is one, so
replaying an event twice does not count it twice in the windows. A late label
(:meth:`record_label`) rewrites the event's member.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Hashable, Iterator, Sized
from datetime import timedelta
from typing import Any, cast

import orjson
import redis.asyncio as redis

from haetae.risk.features.definitions import FEATURES, Feature
from haetae.risk.features.plan import Track, build_tracks, event_features, ratio_features
from haetae.risk.features.redis_windows import WINDOWS_LUA
from haetae.risk.features.rowops import (
    MICROSECOND,
    Row,
    Value,
    compile_readers,
    empty_values,
    event_values,
    key_function,
    measure_function,
    micros_of,
    ratio_values,
    read,
)

WindowCall = tuple[list[str], list[str | int]]  # a track key's keys and script arguments

_SEPARATOR = "\x1f"  # between the parts of a composite entity key
_SLACK = timedelta(days=1)  # kept past the longest window, for late readers


class _RedisTrack:
    def __init__(self, track: Track, prefix: str) -> None:
        self.track = track
        self.kinds = track.kinds
        self.key = key_function(track.keys)
        self.readers = compile_readers(track)
        self.nulls = empty_values(self.readers, present=False)
        self.prefix = f"{prefix}:{track.name}"
        self.delay = track.delay // MICROSECOND
        self.measure_fns = [measure_function(m) for m in track.measures]
        self.distinct_columns = [column for _, column in track.distincts]
        # per window: its length in µs (None: all history)
        self.lengths = [None if w is None else w // MICROSECOND for w in track.windows]
        finite = [length for length in self.lengths if length is not None]
        self.longest = self.delay + max(finite) if finite else None
        self.forever = [k for k, length in enumerate(self.lengths) if length is None]
        self.forever_distincts = [
            j for j, (k, _) in enumerate(track.distincts) if k in self.forever
        ]
        self.wants_hash = bool(self.forever) or track.wants_last
        # What the window script (``redis_windows``) needs to know of this track.
        distinct_lengths = [self.lengths[k] for k, _ in track.distincts]
        self.spec: list[str | int] = [
            self.delay,
            len(self.lengths),
            *(-1 if length is None else length for length in self.lengths),
            len(self.measure_fns),
            len(distinct_lengths),
            *(-1 if length is None else length for length in distinct_lengths),
        ]
        self.finite = [k for k, length in enumerate(self.lengths) if length is not None]

    def window_keys(self, base: str) -> list[str]:
        return [base, f"{base}:win", *(f"{base}:d{j}" for j in range(len(self.track.distincts)))]

    def redis_key(self, key: Hashable) -> str:
        text = _SEPARATOR.join(key) if isinstance(key, tuple) else str(key)
        return f"{self.prefix}:{text}"

    def all_keys(self, base: str) -> list[str]:
        return [f"{base}:all", *(f"{base}:all:{j}" for j in self.forever_distincts)]

    def read_calls(self, calls: list[WindowCall], base: str, now: int) -> None:
        """The script calls that read a key's state: its windows, its all-history sums."""
        if self.longest is not None:
            calls.append((self.window_keys(base), ["read", now, *self.spec]))
        if self.wants_hash:
            calls.append((self.all_keys(base), ["all_read"]))

    def values(self, replies: Iterator[Any], now: int, out: dict[str, Value]) -> None:
        """The features from this key's replies to :meth:`read_calls`, taken in order."""
        windowed = [int(n) for n in next(replies)] if self.longest is not None else []
        stored: dict[str, str] = {}
        sizes: list[Any] = []
        if self.wants_hash:
            flat, *sizes = next(replies)
            stored = _text_pairs(flat)
        width = len(self.measure_fns)
        sums = [[0] * width for _ in self.lengths]
        for i, k in enumerate(self.finite):  # the script's sums, window by window
            sums[k] = windowed[i * width : (i + 1) * width]
        for k in self.forever:
            sums[k] = [int(stored.get(f"s{j}", 0)) for j in range(width)]
        counts = windowed[len(self.finite) * width :] or [0] * len(self.track.distincts)
        counters: list[Sized] = [range(n) for n in counts]  # only their sizes are read
        for j, size in zip(self.forever_distincts, sizes, strict=True):
            counters[j] = range(int(size))
        last = int(stored["last"]) if "last" in stored else None
        read(self.readers, sums, counters, last, now, out)

    def write_calls(
        self, calls: list[WindowCall], base: str, row: Row, now: int, ttl: timedelta
    ) -> None:
        """The script calls that count an event: into its windows and all-history sums."""
        measures = [fn(row) for fn in self.measure_fns]
        values = [row.get(c) for c in self.distinct_columns]
        if self.longest is not None:
            uid = row.get("event_id") or uuid.uuid4().hex
            kept_ms = (self.longest + _SLACK // MICROSECOND) // 1000
            member = _member(uid, now, measures, values)
            args: list[str | int] = ["write", now, *self.spec, member, kept_ms, self.longest]
            calls.append((self.window_keys(base), args))
        if self.wants_hash:
            sums = [(f"s{j}", m) for j, m in enumerate(measures) if self.forever and m]
            sets: list[str | int] = []
            for j in self.forever_distincts:
                value = values[j]
                sets += ["0", ""] if value is None else ["1", value]
            ttl_ms = ttl // timedelta(milliseconds=1)
            pairs = [part for pair in sums for part in pair]
            calls.append(
                (self.all_keys(base), ["all_write", now, ttl_ms, len(sums), *pairs, *sets])
            )

    async def relabel(self, client: redis.Redis, row: Row) -> None:
        event_id = row.get("event_id")
        key = self.key(row)
        if self.longest is None or event_id is None or key is None:
            return
        base = self.redis_key(key)
        at = micros_of(row)
        # no scores asked: the members alone (redis-py types every shape of the reply)
        members = cast(list[bytes], await client.zrangebyscore(base, at, at))
        for member in members:
            uid, _, _, values = json.loads(member)
            if uid == event_id:
                measures = [fn(row) for fn in self.measure_fns]
                async with client.pipeline(transaction=True) as pipe:
                    pipe.zrem(base, member)
                    pipe.zadd(base, {_member(uid, at, measures, values): at})
                    pipe.delete(f"{base}:win")  # the sums are rebuilt by the next read
                    await pipe.execute()


def _member(uid: str, at: int, measures: list[int], values: list[Any]) -> str:
    return json.dumps([uid, at, measures, values], separators=(",", ":"))


def _text_pairs(reply: list[Any]) -> dict[str, str]:
    """A hash as HGETALL answers it inside a script: field, value, field, value..."""

    def text(value: Any) -> str:
        return value.decode() if isinstance(value, bytes) else str(value)

    return {text(reply[i]): text(reply[i + 1]) for i in range(0, len(reply), 2)}


class RedisFeatureStore:
    """The :class:`~haetae.risk.features.online.AsyncFeatureStore` protocol on Redis (the
    asyncio client: a process's other requests go on while one waits for Redis)."""

    def __init__(
        self,
        client: redis.Redis,
        *,
        prefix: str = "haetae:features",
        features: tuple[Feature, ...] = FEATURES,
        history_ttl: timedelta = timedelta(days=400),
    ) -> None:
        self._client = client
        self._tracks = [_RedisTrack(track, prefix) for track in build_tracks(features)]
        self._event = event_features(features)
        self._ratios = ratio_features(features)
        self._ttl = history_ttl

    @classmethod
    def from_url(cls, url: str, *, timeout: float = 1.0, **options: Any) -> RedisFeatureStore:
        """A store on its own connection pool (connections open at the first call)."""
        client = redis.Redis.from_url(url, socket_timeout=timeout, socket_connect_timeout=timeout)
        return cls(client, **options)

    async def features(self, row: Row) -> dict[str, Value]:
        calls, keyed = self._read_calls(row)
        return self._values(row, keyed, await self._run(calls))

    async def update(self, row: Row) -> None:
        await self._run(self._write_calls(row))

    async def process(self, row: Row) -> dict[str, Value]:
        """Read and write in one script run (atomic: the reads see the state before)."""
        reads, keyed = self._read_calls(row)
        replies = await self._run(reads + self._write_calls(row))
        return self._values(row, keyed, replies[: len(reads)])

    async def record_label(self, row: Row, label: int) -> None:
        labelled = {**row, "label": label}
        for track in self._tracks:
            if track.track.labelled and row.get("kind") in track.kinds:
                await track.relabel(self._client, labelled)

    async def close(self) -> None:
        await self._client.aclose()

    async def _run(self, calls: list[WindowCall]) -> list[Any]:
        """One run of the script for all of ``calls``: one round trip, one reply per call."""
        if not calls:
            return []
        keys: list[str] = []
        args: list[str] = [str(len(calls))]
        for call_keys, call_args in calls:
            keys += call_keys
            args += [str(len(call_keys)), str(len(call_args)), *map(str, call_args)]
        # EVAL with the script's text, not EVALSHA: a registered script asks Redis whether it
        # has the script first in a pipeline, and needs a retry path otherwise; Redis caches
        # the compiled script by its digest all the same. The arguments go as one JSON
        # array: redis-py encodes a command's arguments one by one in Python, and an event's
        # hundred of them were a third of the client's CPU.
        replies = await self._client.eval(WINDOWS_LUA, len(keys), *keys, orjson.dumps(args))
        return cast(list[Any], replies)

    def _read_calls(self, row: Row) -> tuple[list[WindowCall], list[bool]]:
        """The script calls that read ``row``'s keys, and per track whether it has one."""
        now = micros_of(row)
        calls: list[WindowCall] = []
        keyed: list[bool] = []
        for track in self._tracks:
            key = track.key(row)
            keyed.append(key is not None)
            if key is not None:
                track.read_calls(calls, track.redis_key(key), now)
        return calls, keyed

    def _write_calls(self, row: Row) -> list[WindowCall]:
        now = micros_of(row)
        kind = row["kind"]
        calls: list[WindowCall] = []
        for track in self._tracks:
            if kind not in track.kinds:
                continue
            key = track.key(row)
            if key is not None:
                track.write_calls(calls, track.redis_key(key), row, now, self._ttl)
        return calls

    def _values(self, row: Row, keyed: list[bool], replies: list[Any]) -> dict[str, Value]:
        """The features from the replies to :meth:`_read_calls` (made for the same row)."""
        now = micros_of(row)
        out: dict[str, Value] = {}
        event_values(self._event, row, now, out)
        answers = iter(replies)
        for track, has_key in zip(self._tracks, keyed, strict=True):
            if has_key:
                track.values(answers, now, out)
            else:
                out.update(track.nulls)
        ratio_values(self._ratios, row, out)
        return out
