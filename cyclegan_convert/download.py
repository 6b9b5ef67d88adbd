"""HTTP downloads that survive a dropped connection: standard library only.

Bytes go to a ``.part`` file; an interrupted download resumes with an HTTP Range request, in the
same run (a few retries) or the next one. A sidecar ``.part.json`` remembers the URL and the server's
ETag / Last-Modified, so a resume never glues two versions of a file together (``If-Range``).
The caller checks the finished ``.part`` and moves it into place: nothing here looks complete.
"""
from __future__ import annotations

import contextlib
import http.client
import json
import re
import socket
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Callable, Iterator, Optional

from .atomic import atomic_write_bytes
from .errors import DownloadError

# progress(bytes_done, total_bytes or None, bytes_per_second over this connection)
ProgressFn = Callable[[int, Optional[int], float], None]

CHUNK = 1 << 16
_CONTENT_RANGE = re.compile(r"bytes\s+(\d+)-(\d+)/(\d+|\*)")
# What a connection that dies mid-transfer raises, depending on where it dies.
_DROPPED = (http.client.IncompleteRead, http.client.RemoteDisconnected, ConnectionError, TimeoutError,
            socket.timeout, OSError)


class OfflineError(DownloadError):
    """The server could not be reached at all (no network, DNS failure, connection refused)."""

    def __init__(self, url: str, reason: str, advice: str = "check the network connection"):
        super().__init__(f"cannot reach {url} ({reason}): {advice}")
        self.url = url
        self.reason = reason


class _Interrupted(Exception):
    """The transfer stopped early; what is on disk can be resumed."""


@contextlib.contextmanager
def exclusive(lock_path: Path, on_wait: Optional[Callable[[], None]] = None) -> Iterator[None]:
    """Holds an exclusive lock on ``lock_path`` (POSIX): two ccv processes never write one ``.part``.

    ``on_wait`` is called once if another process holds the lock and this one has to wait.
    """
    try:
        import fcntl
    except ImportError:  # Windows: no advisory locks in the standard library; run one pull at a time
        yield
        return
    lock_path.parent.mkdir(parents=True, exist_ok=True)
    with open(lock_path, "a") as f:
        try:
            fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            if on_wait:
                on_wait()
            fcntl.flock(f, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)


def _user_agent() -> str:
    try:
        from importlib.metadata import version

        return f"ccv/{version('cyclegan-convert')}"
    except Exception:
        return "ccv"


def _reason(e: BaseException) -> str:
    r = getattr(e, "reason", None) or e
    text = getattr(r, "strerror", None) or str(r) or type(r).__name__
    return text.splitlines()[0][:120]


def _meta_path(part: Path) -> Path:
    return part.with_name(part.name + ".json")


def _read_meta(part: Path) -> dict:
    try:
        return json.loads(_meta_path(part).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}


def _restart(part: Path) -> None:
    part.unlink(missing_ok=True)
    _meta_path(part).unlink(missing_ok=True)


def _fetch(url: str, part: Path, progress: Optional[ProgressFn], timeout: float) -> None:
    """One connection: appends to ``part`` what the server sends; raises _Interrupted if it stops short."""
    meta = _read_meta(part)
    have = part.stat().st_size if part.exists() else 0
    if have and meta.get("url") != url:
        _restart(part)  # a leftover from another address (a mirror): not the same bytes
        have, meta = 0, {}
    headers = {"User-Agent": _user_agent(), "Accept-Encoding": "identity"}
    if have:
        headers["Range"] = f"bytes={have}-"
        if validator := meta.get("etag") or meta.get("last_modified"):
            headers["If-Range"] = validator  # the server sends the whole new file if it changed
    try:
        resp = urllib.request.urlopen(urllib.request.Request(url, headers=headers), timeout=timeout)
    except urllib.error.HTTPError as e:
        e.close()
        if e.code == 416 and have:
            if e.headers.get("Content-Range", "").rpartition("/")[2] == str(have):
                return  # the previous run had received everything already
            _restart(part)
            raise _Interrupted("the server refused to resume; starting again") from None
        raise DownloadError(f"{url}: the server answered {e.code} {e.reason}") from None
    except urllib.error.URLError as e:
        raise OfflineError(url, _reason(e)) from None
    except _DROPPED as e:  # a timeout or reset while connecting
        raise OfflineError(url, _reason(e)) from None

    with resp:
        if resp.status == 206:
            m = _CONTENT_RANGE.match(resp.headers.get("Content-Range", ""))
            if not m or int(m.group(1)) != have:
                _restart(part)
                raise _Interrupted("the server sent another range than asked; starting again")
            total = int(m.group(3)) if m.group(3) != "*" else None
            mode = "ab"
        else:  # 200: the whole file (a server without Range support, or the file changed)
            length = resp.headers.get("Content-Length")
            total = int(length) if length and length.isdigit() else None
            have, mode = 0, "wb"
        meta = {"url": url, "etag": resp.headers.get("ETag"), "last_modified": resp.headers.get("Last-Modified"),
                "total": total}
        part.parent.mkdir(parents=True, exist_ok=True)
        atomic_write_bytes(_meta_path(part), json.dumps(meta).encode())
        done, got, t0 = have, 0, time.monotonic()
        if progress:
            progress(done, total, 0.0)
        with open(part, mode) as f:
            while True:
                try:
                    chunk = resp.read(CHUNK)
                except _DROPPED as e:
                    raise _Interrupted(f"connection lost ({_reason(e)})") from None
                if not chunk:
                    break
                f.write(chunk)
                done += len(chunk)
                got += len(chunk)
                if progress:
                    progress(done, total, got / max(time.monotonic() - t0, 1e-6))
    if total is not None and done < total:
        raise _Interrupted(f"connection closed after {done} of {total} bytes")
    if total is not None and done > total:
        _restart(part)
        raise DownloadError(f"{url}: received {done} bytes where the server announced {total}; try again")


def download(url: str, part: Path, *, progress: Optional[ProgressFn] = None, retries: int = 3,
             timeout: float = 30.0, backoff: float = 1.0,
             on_notice: Optional[Callable[[str], None]] = None) -> Path:
    """Downloads ``url`` into ``part`` (resuming what is there) and returns it once complete.

    A dropped connection is retried ``retries`` times, each resuming where the last stopped. When the
    retries run out, the ``.part`` file stays for the next run to resume. Raises OfflineError when
    the server cannot be reached, DownloadError for HTTP errors.
    """
    part = Path(part)
    part.parent.mkdir(parents=True, exist_ok=True)
    for attempt in range(retries + 1):
        try:
            _fetch(url, part, progress, timeout)
            _meta_path(part).unlink(missing_ok=True)
            return part
        except _Interrupted as e:
            if attempt == retries:
                size = part.stat().st_size if part.exists() else 0
                raise DownloadError(f"{url}: download interrupted ({e}); run the same command again to resume "
                                    f"from {size / 1e6:.1f} MB") from None
            if on_notice:
                on_notice(f"{e}; resuming ({attempt + 1}/{retries})")
            time.sleep(backoff * (attempt + 1))
    raise AssertionError("unreachable")
