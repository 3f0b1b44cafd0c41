"""moto's standalone S3 server (`python -m moto.server`) on loopback, for tests that need a
real S3 API over HTTP: the S3-compatible endpoint a study sets in [storage] endpoint_url.

The server runs as its own process on a free port of 127.0.0.1 and answers anonymous GETs
of its objects under a public-read bucket policy, which is what a worker's browser does with
a public bucket. `cdn` puts a small caching front in front of it, the way a CDN stands in
front of a bucket at a study's [storage] public_base_url.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import IO

CREDENTIALS = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
               "AWS_DEFAULT_REGION": "us-east-1"}
START_TIMEOUT_S = 60


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextmanager
def moto_server() -> Iterator[str]:
    """Start `python -m moto.server` on 127.0.0.1; yield its endpoint URL; stop it."""
    port = free_port()
    env = {**os.environ, **CREDENTIALS}
    endpoint = f"http://127.0.0.1:{port}"
    # The server logs every request: to a file, never to a pipe nobody reads (a full pipe
    # would stop the server mid-request).
    with tempfile.TemporaryFile() as log:
        process = subprocess.Popen([sys.executable, "-m", "moto.server", "-H", "127.0.0.1",
                                    "-p", str(port)], env=env, stdout=log, stderr=log)
        try:
            _wait_until_up(endpoint, process, log)
            yield endpoint
        finally:
            process.terminate()
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


def _wait_until_up(endpoint: str, process: subprocess.Popen[bytes], log: IO[bytes]) -> None:
    deadline = time.monotonic() + START_TIMEOUT_S
    while time.monotonic() < deadline:
        if process.poll() is not None:
            log.seek(0)
            raise RuntimeError(f"moto.server exited: {log.read().decode()[-2000:]}")
        try:
            with urllib.request.urlopen(endpoint + "/moto-api/", timeout=2):
                return
        except urllib.error.HTTPError:
            return  # it answers
        except OSError:
            time.sleep(0.2)
    raise RuntimeError(f"moto.server did not answer at {endpoint} in {START_TIMEOUT_S} s")


def s3_client(endpoint: str):  # a boto3 S3 client (boto3-stubs would name the type)
    import boto3

    return boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1",
                        aws_access_key_id="testing", aws_secret_access_key="testing")


@contextmanager
def cdn(origin: str) -> Iterator[str]:
    """A caching HTTP front for `origin` on 127.0.0.1; yield its base URL.

    GET and HEAD go to the origin one at a time and are kept; a status other than 200 is
    passed on (and not kept), so a bucket without public read still answers 403 here.
    """
    cache: dict[str, tuple[int, str, bytes]] = {}
    lock = threading.Lock()

    class Front(BaseHTTPRequestHandler):
        def fetch(self) -> tuple[int, str, bytes]:
            with lock:
                if self.path in cache:
                    return cache[self.path]
                try:
                    with urllib.request.urlopen(origin + self.path, timeout=30) as response:
                        got = (200, response.headers.get("Content-Type", ""), response.read())
                except urllib.error.HTTPError as exc:
                    return exc.code, "text/plain", b""
                cache[self.path] = got
                return got

        def reply(self, body: bool) -> None:
            status, content_type, data = self.fetch()
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            if body:
                self.wfile.write(data)

        def do_GET(self) -> None:  # noqa: N802 - http.server's naming
            self.reply(body=True)

        def do_HEAD(self) -> None:  # noqa: N802
            self.reply(body=False)

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Front)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
