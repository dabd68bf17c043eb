"""One error type for every failure the API answers with; text comes from the catalog."""

from __future__ import annotations

from typing import Any


class HaetaeError(Exception):
    """A failure with a stable catalog code. The HTTP status is the catalog's unless given."""

    def __init__(
        self,
        code: str,
        *,
        field: str | None = None,
        params: dict[str, Any] | None = None,
        status_code: int | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(code)
        self.code = code
        self.field = field
        self.params = params or {}
        self.status_code = status_code
        self.headers = headers  # e.g. Retry-After
