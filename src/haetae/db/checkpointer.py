"""SQLite WAL checkpoints in a thread of their own, off the event loop.

SQLite's automatic checkpoint runs inside the commit that takes the WAL past 1,000 pages:
that one commit copies about 4 MB into the database file while every request behind it
waits. bench/risk.py saw it as the latency tail of one decision at a time (one event in
~80 took 6 ms instead of 1). A running server therefore turns the automatic checkpoint into
a distant backstop and lets this thread run PASSIVE checkpoints, which never block a writer
or a reader, on a connection of its own. The standard library's sqlite3 releases the GIL
while SQLite works, so the copying happens beside the event loop, on the other core.

Written here because no library does it: SQLite leaves checkpoint scheduling to the
application, and SQLAlchemy has no notion of it.
"""

from __future__ import annotations

import sqlite3
import threading

import structlog

log = structlog.get_logger(__name__)

# While the thread runs, a connection checkpoints by itself only past this many WAL pages
# (64 MB with 4 KiB pages): the thread has fallen far behind, or stopped.
BACKSTOP_PAGES = 16_384


class WalCheckpointer:
    """Runs ``PRAGMA wal_checkpoint(PASSIVE)`` on ``path`` every ``interval`` seconds."""

    def __init__(self, path: str, *, interval: float = 0.05) -> None:
        self._path = path
        self._interval = interval
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None
        self.checkpoints = 0  # completed runs (tests, diagnostics)
        self.frames_copied = 0

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def start(self) -> None:
        if self.running:
            return
        self._stopping.clear()
        self._thread = threading.Thread(target=self._run, name="sqlite-checkpointer", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Stop after a last checkpoint; returns once the thread has ended."""
        self._stopping.set()
        if self._thread is not None:
            self._thread.join()
            self._thread = None

    def _run(self) -> None:
        connection = sqlite3.connect(self._path, isolation_level=None, check_same_thread=False)
        try:
            connection.execute("PRAGMA busy_timeout=1000")
            while not self._stopping.wait(self._interval):
                self._checkpoint(connection)
            self._checkpoint(connection)
        finally:
            connection.close()

    def _checkpoint(self, connection: sqlite3.Connection) -> None:
        try:
            busy, _, copied = connection.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()
        except sqlite3.Error as error:  # the file gone, the disk full: say so, keep trying
            log.warning("db.checkpoint_failed", error=repr(error))
            return
        self.checkpoints += 1
        if not busy and copied > 0:
            self.frames_copied += copied
