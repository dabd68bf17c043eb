"""The feature store on Redis, for several processes sharing one history (at scale).

Per track and entity key:

* ``{prefix}:{track}:{key}`` a sorted set of the events still inside some window, scored by
  time (µs), each member the event's measures and distinct-counted values as compact JSON
  (``[uid, time, [measures], [values]]``); trimmed on every write and expiring (TTL) one day
  after the longest window (with its delay) has passed;
* ``{prefix}:{track}:{key}:all`` a hash with the all-history sums (``s0``, ``s1``...) and
  the time of the last event (``last``), expiring after ``history_ttl`` without events;
* ``{prefix}:{track}:{key}:all:{n}`` a set per all-history distinct count.

Reading fetches the sorted set of every key of the event in one pipelined round trip and
sums the windows client-side with the same readers as the in-process store; :meth:`process`
reads and writes in one atomic MULTI. The member's ``uid`` is the event id when there is
one, so replaying an event twice does not count it twice in the windows. A late label
(:meth:`record_label`) rewrites the event's member.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Hashable, Sized
from dataclasses import dataclass
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

    def queue_reads(self, pipe: Any, calls: list[WindowCall], base: str, now: int) -> int:
        """Queue the commands that read a key's state (its windows go with ``calls``, one
        script run for every track); returns how many replies the pipeline gets."""
        queued = 0
        if self.longest is not None:
            calls.append((self.window_keys(base), ["read", now, *self.spec]))
        if self.wants_hash:
            pipe.hgetall(f"{base}:all")
            queued += 1
        for j in self.forever_distincts:
            pipe.scard(f"{base}:all:{j}")
            queued += 1
        return queued

    def values(
        self, replies: list[Any], windows: list[Any] | None, now: int, out: dict[str, Value]
    ) -> None:
        replies = list(replies)
        windowed = [int(n) for n in windows] if windows is not None else []
        stored = _text_dict(replies.pop(0)) if self.wants_hash else {}
        width = len(self.measure_fns)
        sums = [[0] * width for _ in self.lengths]
        for i, k in enumerate(self.finite):  # the script's sums, window by window
            sums[k] = windowed[i * width : (i + 1) * width]
        for k in self.forever:
            sums[k] = [int(stored.get(f"s{j}", 0)) for j in range(width)]
        counts = windowed[len(self.finite) * width :] or [0] * len(self.track.distincts)
        counters: list[Sized] = [range(n) for n in counts]  # only their sizes are read
        for j in self.forever_distincts:
            counters[j] = range(int(replies.pop(0)))
        last = int(stored["last"]) if "last" in stored else None
        read(self.readers, sums, counters, last, now, out)

    def queue_writes(
        self, pipe: Any, calls: list[WindowCall], base: str, row: Row, now: int, ttl: timedelta
    ) -> None:
        measures = [fn(row) for fn in self.measure_fns]
        values = [row.get(c) for c in self.distinct_columns]
        if self.longest is not None:
            uid = row.get("event_id") or uuid.uuid4().hex
            kept_ms = (self.longest + _SLACK // MICROSECOND) // 1000
            member = _member(uid, now, measures, values)
            args: list[str | int] = ["write", now, *self.spec, member, kept_ms, self.longest]
            calls.append((self.window_keys(base), args))
        if self.wants_hash:
            for j, measure in enumerate(measures):
                if self.forever and measure:
                    pipe.hincrby(f"{base}:all", f"s{j}", measure)
            pipe.hset(f"{base}:all", "last", now)
            pipe.pexpire(f"{base}:all", ttl // timedelta(milliseconds=1))
        for j in self.forever_distincts:
            if values[j] is not None:
                pipe.sadd(f"{base}:all:{j}", values[j])
                pipe.pexpire(f"{base}:all:{j}", ttl // timedelta(milliseconds=1))

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


def _text_dict(reply: dict[Any, Any]) -> dict[str, str]:
    def text(value: Any) -> str:
        return value.decode() if isinstance(value, bytes) else str(value)

    return {text(k): text(v) for k, v in reply.items()}


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
        async with self._client.pipeline(transaction=False) as pipe:
            plan = self._queue_reads(pipe, row)
            replies = await pipe.execute()
        return self._values(row, plan, replies)

    async def update(self, row: Row) -> None:
        async with self._client.pipeline(transaction=True) as pipe:
            self._queue_writes(pipe, row)
            await pipe.execute()

    async def process(self, row: Row) -> dict[str, Value]:
        """Read and write in one atomic round trip."""
        async with self._client.pipeline(transaction=True) as pipe:
            plan = self._queue_reads(pipe, row)
            self._queue_writes(pipe, row)
            replies = await pipe.execute()
        return self._values(row, plan, replies)

    async def record_label(self, row: Row, label: int) -> None:
        labelled = {**row, "label": label}
        for track in self._tracks:
            if track.track.labelled and row.get("kind") in track.kinds:
                await track.relabel(self._client, labelled)

    async def close(self) -> None:
        await self._client.aclose()

    def _run_windows(self, pipe: Any, calls: list[WindowCall]) -> bool:
        """Queue one run of the window script for every track key of ``calls``."""
        if not calls:
            return False
        keys: list[str] = []
        args: list[str] = [str(len(calls))]
        for call_keys, call_args in calls:
            keys += call_keys
            args += [str(len(call_keys)), str(len(call_args)), *map(str, call_args)]
        # EVAL with the script's text, not EVALSHA: a pipeline of a registered script asks
        # Redis whether it has the script first, one more round trip per event (a tenth of
        # the client's CPU); Redis caches the compiled script by its digest all the same.
        # The arguments go as one JSON array: redis-py encodes a command's arguments one by
        # one in Python, and an event's hundred of them were a third of the client's CPU.
        pipe.eval(WINDOWS_LUA, len(keys), *keys, orjson.dumps(args))
        return True

    def _queue_reads(self, pipe: Any, row: Row) -> _ReadPlan:
        """Per track, how many pipeline replies its reads take (-1: the event has no such
        entity) and whether it has windows; the script's reply comes after them all."""
        now = micros_of(row)
        counts = []
        calls: list[WindowCall] = []
        for track in self._tracks:
            key = track.key(row)
            if key is None:
                counts.append((track, -1, False))
            else:
                queued = track.queue_reads(pipe, calls, track.redis_key(key), now)
                counts.append((track, queued, track.longest is not None))
        return _ReadPlan(counts, self._run_windows(pipe, calls))

    def _queue_writes(self, pipe: Any, row: Row) -> None:
        now = micros_of(row)
        kind = row["kind"]
        calls: list[WindowCall] = []
        for track in self._tracks:
            if kind not in track.kinds:
                continue
            key = track.key(row)
            if key is not None:
                track.queue_writes(pipe, calls, track.redis_key(key), row, now, self._ttl)
        self._run_windows(pipe, calls)

    def _values(self, row: Row, plan: _ReadPlan, replies: list[Any]) -> dict[str, Value]:
        now = micros_of(row)
        out: dict[str, Value] = {}
        event_values(self._event, row, now, out)
        reads = sum(max(count, 0) for _, count, _ in plan.counts)
        windows = iter(replies[reads] if plan.windows else [])
        at = 0
        for track, count, windowed in plan.counts:
            if count < 0:
                out.update(track.nulls)
                continue
            track.values(replies[at : at + count], next(windows) if windowed else None, now, out)
            at += count
        ratio_values(self._ratios, row, out)
        return out


@dataclass(frozen=True, slots=True)
class _ReadPlan:
    counts: list[tuple[_RedisTrack, int, bool]]
    windows: bool  # the script's reply follows the tracks' own replies
