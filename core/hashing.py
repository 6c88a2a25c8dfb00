"""Content hashes that identify inputs and models in provenance records."""

import hashlib
from functools import lru_cache
from pathlib import Path


def file_sha256(path: str | Path) -> str:
    """SHA-256 of a file; remembered per path, size and modification time (a GGUF is gigabytes)."""
    resolved = Path(path).resolve()
    stat = resolved.stat()
    return _sha256(resolved, stat.st_size, stat.st_mtime_ns)


@lru_cache(maxsize=256)
def _sha256(path: Path, size: int, mtime_ns: int) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 23), b""):
            digest.update(block)
    return digest.hexdigest()
