"""A stand-in AWS endpoint on 127.0.0.1 that can hold a request for as long as a test likes.

Chaos tests need the secrets resolver blocked in the middle of resolution, at a moment the
test knows. The resolver fetches `arn:aws:secretsmanager:...` from `AWS_ENDPOINT_URL`;
this endpoint answers the first `answers` requests with a Secrets Manager value and holds
every later one open without a byte of answer. `wait_held()` returns once a request is
being held: the event that says "the resolver is blocked now" (boto3 would wait its 60 s
read timeout). A FIFO used to serve for this, but pwsup now refuses to read one.
"""

from __future__ import annotations

import json
import queue
import socket
import threading

SECRET_ARN = "arn:aws:secretsmanager:us-east-1:123456789012:secret:chaos"
ENV = {"AWS_ACCESS_KEY_ID": "AKIACHAOSMATRIX00000", "AWS_SECRET_ACCESS_KEY": "x" * 40,
       "AWS_EC2_METADATA_DISABLED": "true", "AWS_MAX_ATTEMPTS": "1"}
"""Credentials that sign requests (nothing checks them) and no detour to EC2 metadata."""


class HeldAws:
    def __init__(self, secret_string: str, answers: int = 0) -> None:
        self._answer = _response(secret_string)
        self._answers_left = answers
        self._held: queue.Queue[socket.socket] = queue.Queue()
        self._open: list[socket.socket] = []
        self._listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._listener.bind(("127.0.0.1", 0))
        self._listener.listen(16)
        self.url = f"http://127.0.0.1:{self._listener.getsockname()[1]}"
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    def env(self) -> dict[str, str]:
        """What pwsup's environment needs to fetch SECRET_ARN from here."""
        return {**ENV, "AWS_ENDPOINT_URL": self.url}

    def wait_held(self, timeout: float) -> None:
        """Return once a request is held (raise AssertionError after `timeout`)."""
        try:
            self._held.get(timeout=timeout)
        except queue.Empty:
            raise AssertionError(f"no AWS request arrived within {timeout:g} s") from None

    def close(self) -> None:
        self._listener.close()
        for conn in self._open:
            conn.close()

    def _serve(self) -> None:
        while True:
            try:
                conn, _ = self._listener.accept()
            except OSError:
                return  # closed
            self._open.append(conn)
            if not _read_request(conn):
                continue
            if self._answers_left > 0:
                self._answers_left -= 1
                conn.sendall(self._answer)
            else:
                self._held.put(conn)


def _read_request(conn: socket.socket) -> bool:
    """Read one request (headers and a Content-Length body); False if the peer left."""
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = conn.recv(65536)
        if not chunk:
            return False
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    length = 0
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            length = int(value.strip())
    while len(body) < length:
        chunk = conn.recv(65536)
        if not chunk:
            return False
        body += chunk
    return True


def _response(secret_string: str) -> bytes:
    payload = json.dumps({"ARN": SECRET_ARN, "Name": "chaos", "VersionId": "v1",
                          "SecretString": secret_string, "CreatedDate": 1.7e9}).encode()
    return (b"HTTP/1.1 200 OK\r\nContent-Type: application/x-amz-json-1.1\r\n"
            b"Content-Length: " + str(len(payload)).encode() + b"\r\n\r\n" + payload)
