"""A local HTTP file server for download tests: Range requests, ETags, and ways to misbehave."""
from __future__ import annotations

import contextlib
import hashlib
import io
import re
import socket
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Iterator

import torch


def tiny_generator_bytes(with_legacy_buffers: bool = False) -> bytes:
    """A generator file of the original format: ngf 8, 2 blocks, plain state_dict."""
    from cyclegan_convert.networks import ResnetGenerator, init_weights

    torch.manual_seed(0)
    sd = init_weights(ResnetGenerator(ngf=8, n_blocks=2)).state_dict()
    if with_legacy_buffers:  # old files of the original carry InstanceNorm buffers
        sd["model.2.running_mean"] = torch.zeros(8)
        sd["model.2.running_var"] = torch.ones(8)
    buf = io.BytesIO()
    torch.save(sd, buf)
    return buf.getvalue()


def free_closed_port() -> int:
    """A port nothing listens on: connecting to it is refused, as when offline."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class FileServer:
    """Serves ``files`` (name -> bytes) at ``url``/<name>.

    ``drop_once``: names whose first response stops halfway and drops the connection.
    ``no_range``: names served whole even when a Range is asked for.
    ``requests``: (path, Range header, If-Range header) for every request, in order.
    """

    def __init__(self, files: dict[str, bytes]):
        self.files = dict(files)
        self.drop_once: set[str] = set()
        self.no_range: set[str] = set()
        self.requests: list[tuple[str, str | None, str | None]] = []
        self._dropped: set[str] = set()
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):  # keep test output clean
                pass

            def do_GET(self):
                name = self.path.lstrip("/").rsplit("/", 1)[-1]
                rng, if_range = self.headers.get("Range"), self.headers.get("If-Range")
                server.requests.append((self.path, rng, if_range))
                data = server.files.get(name)
                if data is None:
                    self.send_error(404)
                    return
                etag = '"' + hashlib.sha256(data).hexdigest()[:16] + '"'
                start = 0
                m = re.fullmatch(r"bytes=(\d+)-", rng or "")
                if m and name not in server.no_range and (if_range is None or if_range == etag):
                    start = int(m.group(1))
                    if start >= len(data):
                        self.send_response(416)
                        self.send_header("Content-Range", f"bytes */{len(data)}")
                        self.send_header("Content-Length", "0")
                        self.end_headers()
                        return
                    self.send_response(206)
                    self.send_header("Content-Range", f"bytes {start}-{len(data) - 1}/{len(data)}")
                else:
                    self.send_response(200)
                body = data[start:]
                self.send_header("Content-Length", str(len(body)))
                self.send_header("ETag", etag)
                self.send_header("Accept-Ranges", "bytes")
                self.end_headers()
                if name in server.drop_once and name not in server._dropped:
                    server._dropped.add(name)
                    self.wfile.write(body[: len(body) // 2])
                    self.wfile.flush()
                    self.close_connection = True
                    with contextlib.suppress(OSError):
                        self.connection.shutdown(socket.SHUT_RDWR)
                    return
                self.wfile.write(body)

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/pretrained"

    def __enter__(self) -> "FileServer":
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()
        return self

    def __exit__(self, *exc) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


@contextlib.contextmanager
def serving(files: dict[str, bytes]) -> Iterator[FileServer]:
    with FileServer(files) as s:
        yield s
