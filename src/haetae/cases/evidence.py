"""Evidence files: checked for size and for what they really are (by their first bytes, not
the name or the declared type), stored once under the data directory by SHA-256."""

from __future__ import annotations

import hashlib
from pathlib import Path

from haetae.errors import HaetaeError

MAX_BYTES = 10 * 1024 * 1024
# Screenshots, photos, scans and exported chat or call logs: what victims actually send.
SIGNATURES: tuple[tuple[bytes, str], ...] = (
    (b"\x89PNG\r\n\x1a\n", "image/png"),
    (b"\xff\xd8\xff", "image/jpeg"),
    (b"%PDF-", "application/pdf"),
    (b"GIF87a", "image/gif"),
    (b"GIF89a", "image/gif"),
)


def sniff(data: bytes, filename: str) -> str:
    for magic, content_type in SIGNATURES:
        if data.startswith(magic):
            return content_type
    if filename.lower().endswith(".txt"):
        try:
            data.decode("utf-8")
        except UnicodeDecodeError:
            pass
        else:
            return "text/plain"
    raise HaetaeError("evidence_type_not_allowed", field="file", params={"filename": filename})


def check(data: bytes, filename: str) -> str:
    """The file's real content type; a 4xx naming ``file`` when too large, empty or of a
    type not accepted."""
    if not data:
        raise HaetaeError("evidence_empty", field="file")
    if len(data) > MAX_BYTES:
        raise HaetaeError(
            "evidence_too_large", field="file", params={"max_mb": MAX_BYTES // (1024 * 1024)}
        )
    return sniff(data, filename)


def store(directory: Path, data: bytes) -> str:
    digest = hashlib.sha256(data).hexdigest()
    directory.mkdir(parents=True, exist_ok=True)
    target = directory / digest
    if not target.exists():
        partial = target.with_suffix(".part")
        partial.write_bytes(data)
        partial.replace(target)
    return digest
