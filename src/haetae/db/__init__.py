"""Database access: engine, sessions, the declarative base and migrations."""

from haetae.db.base import Base, UtcDateTime, new_id, utcnow
from haetae.db.engine import Database, async_url, sync_url

__all__ = ["Base", "Database", "UtcDateTime", "async_url", "new_id", "sync_url", "utcnow"]
