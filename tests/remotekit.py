"""Real file servers on 127.0.0.1 for the remote-file tests: HTTP (ranges, Last-Modified, a folder
listing, basic auth, a connection dropped on purpose), SFTP (asyncssh, password or key), S3
(moto's ThreadedMotoServer) and FTP (pyftpdlib). Each serves a folder of the test's own, so a
test writes files (and sets their modification times) with plain file operations, except S3,
which gets objects put through boto3.

Also used by bench/bench_remote_read.py (python -c 'import remotekit' with tests/ on sys.path).
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import email.utils
import logging
import os
import socket
import threading
import time
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

USER, PASSWORD = "reader", "pw-Secr3t-9f8e7d"


def set_mtime(path: Path, when: float) -> None:
    os.utime(path, (when, when))


# -- HTTP ------------------------------------------------------------------------------------------


class HttpFiles:
    """Serves `root` over HTTP; `drop_once` holds paths whose next GET ends half-way (the socket
    shut down after half the body), `stall` paths whose GETs send half the body and then wait until
    `released` is set (a download that hangs part way), `auth` = (user, password) asks for basic
    auth."""

    def __init__(self, root: Path, auth: tuple[str, str] | None = None):
        self.root, self.auth = Path(root), auth
        self.drop_once: set[str] = set()
        self.stall: set[str] = set()
        self.released = threading.Event()
        self.requests: list[tuple[str, str, str | None]] = []  # (method, path, Range)
        kit = self

        class Handler(SimpleHTTPRequestHandler):
            def __init__(self, *args, **kwargs):
                super().__init__(*args, directory=str(kit.root), **kwargs)

            def log_message(self, *args):
                pass

            def _allowed(self) -> bool:
                kit.requests.append((self.command, self.path, self.headers.get("Range")))
                if kit.auth is None:
                    return True
                want = "Basic " + base64.b64encode(f"{kit.auth[0]}:{kit.auth[1]}".encode()).decode()
                if self.headers.get("Authorization") == want:
                    return True
                self.send_response(401)
                self.send_header("WWW-Authenticate", 'Basic realm="files"')
                self.send_header("Content-Length", "0")
                self.end_headers()
                return False

            def do_HEAD(self):
                if self._allowed():
                    self._file(body=False)

            def do_GET(self):
                if self._allowed():
                    self._file(body=True)

            def _file(self, body: bool):
                path = Path(self.translate_path(self.path))
                if path.is_dir():
                    return SimpleHTTPRequestHandler.do_GET(self) if body else SimpleHTTPRequestHandler.do_HEAD(self)
                if not path.is_file():
                    self.send_error(404)
                    return
                size = path.stat().st_size
                start, end, status = 0, size - 1, 200
                wanted = self.headers.get("Range")
                if wanted and wanted.startswith("bytes="):
                    a, _, b = wanted[6:].partition("-")
                    start, end, status = int(a or 0), int(b) if b else size - 1, 206
                self.send_response(status)
                self.send_header("Content-Type", "text/csv")
                self.send_header("Accept-Ranges", "bytes")
                self.send_header("Content-Length", str(end - start + 1))
                if status == 206:
                    self.send_header("Content-Range", f"bytes {start}-{end}/{size}")
                self.send_header("Last-Modified", email.utils.formatdate(path.stat().st_mtime, usegmt=True))
                self.end_headers()
                if not body:
                    return
                drop = self.path in kit.drop_once
                kit.drop_once.discard(self.path)
                stalled = self.path in kit.stall
                sent, stop = 0, (end - start + 1) // 2 if drop or stalled else None
                with open(path, "rb") as f:
                    f.seek(start)
                    left = end - start + 1
                    while left:
                        block = f.read(min(1 << 16, left))
                        if not block:
                            break
                        if stop is not None and sent + len(block) > stop:
                            self.wfile.write(block[: stop - sent])
                            self.wfile.flush()
                            if stalled:
                                kit.released.wait(30)
                            self.connection.shutdown(socket.SHUT_RDWR)
                            self.close_connection = True
                            return
                        try:
                            self.wfile.write(block)
                        except (BrokenPipeError, ConnectionResetError):
                            return
                        sent += len(block)
                        left -= len(block)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def url(self, path: str = "") -> str:
        return f"http://127.0.0.1:{self.port}/{path.lstrip('/')}"

    def stop(self) -> None:
        self.released.set()
        self.server.shutdown()
        self.server.server_close()


# -- SFTP ------------------------------------------------------------------------------------------


class SftpFiles:
    """An SFTP server (asyncssh) on its own event loop thread, chrooted to `root`; logins with
    USER/PASSWORD, or with a key whose public half is in `authorized` (an OpenSSH line)."""

    def __init__(self, root: Path, authorized: str | None = None):
        import asyncssh

        self.root = Path(root)
        self.loop = asyncio.new_event_loop()
        host_key = asyncssh.generate_private_key("ssh-ed25519")
        keys = asyncssh.import_authorized_keys(authorized) if authorized else None
        root_text = str(self.root)

        class Server(asyncssh.SSHServer):
            def begin_auth(self, username):
                return True

            def password_auth_supported(self):
                return True

            def validate_password(self, username, password):
                return username == USER and password == PASSWORD

            def public_key_auth_supported(self):
                return keys is not None

            def validate_public_key(self, username, key):
                return (
                    username == USER and keys is not None and keys.validate(key, "127.0.0.1", "127.0.0.1") is not None
                )

        def sftp(chan):
            return asyncssh.SFTPServer(chan, chroot=root_text)

        async def start():
            return await asyncssh.create_server(
                Server, "127.0.0.1", 0, server_host_keys=[host_key], sftp_factory=sftp, allow_scp=False
            )

        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()
        self.server = asyncio.run_coroutine_threadsafe(start(), self.loop).result(20)
        self.port = self.server.sockets[0].getsockname()[1]

    def url(self, path: str = "", user: str | None = None) -> str:
        who = f"{user}@" if user else ""
        return f"sftp://{who}127.0.0.1:{self.port}/{path.lstrip('/')}"

    def stop(self) -> None:
        async def close():
            self.server.close()
            await self.server.wait_closed()

        with contextlib.suppress(Exception):
            asyncio.run_coroutine_threadsafe(close(), self.loop).result(10)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)


# -- S3 --------------------------------------------------------------------------------------------


class S3Files:
    """moto's S3-compatible server on 127.0.0.1 with one bucket; `put` uploads an object."""

    KEY_ID, SECRET = "AKIAROUTETEST", "s3-Secr3t-a1b2c3d4"

    def __init__(self, bucket: str = "drops"):
        from moto.server import ThreadedMotoServer

        self.server = ThreadedMotoServer(ip_address="127.0.0.1", port=_free_port(), verbose=False)
        self.server.start()
        host, port = self.server.get_host_and_port()
        self.endpoint = f"http://{host}:{port}"
        self.bucket = bucket
        self.client = self._client()
        self.client.create_bucket(Bucket=bucket)

    def _client(self):
        import boto3

        return boto3.client(
            "s3",
            endpoint_url=self.endpoint,
            aws_access_key_id=self.KEY_ID,
            aws_secret_access_key=self.SECRET,
            region_name="us-east-1",
        )

    def put(self, key: str, data: bytes, modified: float | None = None) -> None:
        """Upload `key`; `modified` (seconds since the epoch) sets its LastModified, which S3
        otherwise makes the upload time (the server runs in this process: its store is reachable)."""
        self.client.put_object(Bucket=self.bucket, Key=key, Body=data)
        if modified is not None:
            import datetime as dt

            from moto.core import DEFAULT_ACCOUNT_ID
            from moto.s3.models import s3_backends

            stored = s3_backends[DEFAULT_ACCOUNT_ID]["global"].buckets[self.bucket].keys[key]
            stored.last_modified = dt.datetime.fromtimestamp(modified, dt.UTC).replace(tzinfo=None)

    def keys(self) -> list[str]:
        return sorted(o["Key"] for o in self.client.list_objects_v2(Bucket=self.bucket).get("Contents", []))

    def url(self, key: str = "") -> str:
        return f"s3://{self.bucket}/{key.lstrip('/')}"

    def stop(self) -> None:
        self.server.stop()


class S3WithKeys:
    """moto's server in a process of its own that checks credentials (after the first requests,
    which make an IAM user, its key and a bucket): `key_id`, `secret` are the good ones."""

    def __init__(self, bucket: str = "locked"):
        import json
        import subprocess
        import sys

        import boto3

        port = _free_port()
        self.process = subprocess.Popen(
            [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
            env={**os.environ, "INITIAL_NO_AUTH_ACTION_COUNT": "4"},
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        self.endpoint, self.bucket = f"http://127.0.0.1:{port}", bucket
        wait_listening(port, 60)
        iam = boto3.client(
            "iam", endpoint_url=self.endpoint, aws_access_key_id="x", aws_secret_access_key="x", region_name="us-east-1"
        )
        iam.create_user(UserName="etl")
        allow = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}]}
        iam.put_user_policy(UserName="etl", PolicyName="all", PolicyDocument=json.dumps(allow))
        key = iam.create_access_key(UserName="etl")["AccessKey"]
        self.key_id, self.secret = key["AccessKeyId"], key["SecretAccessKey"]
        self.client = boto3.client(
            "s3",
            endpoint_url=self.endpoint,
            aws_access_key_id=self.key_id,
            aws_secret_access_key=self.secret,
            region_name="us-east-1",
        )
        self.client.create_bucket(Bucket=bucket)

    def stop(self) -> None:
        self.process.terminate()
        self.process.wait(10)


# -- FTP -------------------------------------------------------------------------------------------


class FtpFiles:
    """pyftpdlib on 127.0.0.1 serving `root` to USER/PASSWORD (read, write, rename, delete)."""

    def __init__(self, root: Path):
        from pyftpdlib.authorizers import DummyAuthorizer
        from pyftpdlib.handlers import FTPHandler
        from pyftpdlib.servers import ThreadedFTPServer

        authorizer = DummyAuthorizer()
        authorizer.add_user(USER, PASSWORD, str(root), perm="elradfmwMT")
        handler = type("Handler", (FTPHandler,), {"authorizer": authorizer, "banner": "route tests"})
        handler.auth_failed_timeout = 0.05
        quiet = logging.getLogger("pyftpdlib")
        quiet.addHandler(logging.NullHandler())
        quiet.propagate = False
        self.server = ThreadedFTPServer(("127.0.0.1", 0), handler)
        self.port = self.server.address[1]
        self.thread = threading.Thread(
            target=lambda: self.server.serve_forever(timeout=0.2, blocking=True, handle_exit=False), daemon=True
        )
        self.thread.start()

    def url(self, path: str = "", user: str | None = None) -> str:
        who = f"{user}@" if user else ""
        return f"ftp://{who}127.0.0.1:{self.port}/{path.lstrip('/')}"

    def stop(self) -> None:
        self.server.close_all()
        self.thread.join(10)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_listening(port: int, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 0.5):
            return
        time.sleep(0.05)
    raise TimeoutError(f"nothing listens on 127.0.0.1:{port}")
