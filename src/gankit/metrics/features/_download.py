"""Weights-file helpers: checksums, the cache folder, atomic verified downloads."""

from __future__ import annotations

import hashlib
import os
import urllib.request
from pathlib import Path

from gankit.utils.io import atomic_open

CACHE_ENV = "GANKIT_CACHE_DIR"


def cache_dir() -> Path:
    """Folder for downloaded weights: $GANKIT_CACHE_DIR or ~/.cache/gankit."""
    return Path(os.environ.get(CACHE_ENV) or Path.home() / ".cache" / "gankit")


def sha256_file(path: str | os.PathLike) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def verify_sha256(path: str | os.PathLike, expected: str | None) -> None:
    """Check that the file's sha256 hex digest starts with ``expected`` (a prefix or the full
    digest); ``None`` skips the check."""
    if expected is None:
        return
    actual = sha256_file(path)
    if not actual.startswith(expected.lower()):
        raise ValueError(
            f"checksum mismatch for {path}: sha256 {actual} does not start with {expected}; "
            "the file is corrupt or not the expected weights (delete it and fetch it again)"
        )


def download(
    url: str, path: str | os.PathLike, expected_sha256: str | None, timeout: float = 60.0
) -> Path:
    """Fetch ``url`` into ``path`` atomically, verifying its checksum before it lands.

    The bytes stream into a temp file beside ``path`` while being hashed; the temp file is
    renamed into place only when complete and matching ``expected_sha256`` (a hex prefix or
    the full digest; ``None`` skips the check). On any failure ``path`` is left untouched.
    """
    path = Path(path)
    digest = hashlib.sha256()
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:
            with atomic_open(path, "wb") as f:
                for chunk in iter(lambda: response.read(1 << 20), b""):
                    digest.update(chunk)
                    f.write(chunk)
                actual = digest.hexdigest()
                if expected_sha256 is not None and not actual.startswith(expected_sha256.lower()):
                    raise ValueError(
                        f"checksum mismatch for {url}: sha256 {actual} does not start with "
                        f"{expected_sha256}; the download was discarded"
                    )
    except OSError as err:  # URLError, HTTPError, timeouts
        raise OSError(f"could not download {url} to {path}: {err}") from err
    return path
