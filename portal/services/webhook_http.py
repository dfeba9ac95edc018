"""Posting one webhook delivery over HTTP(S): stdlib http.client, no redirects, no proxies.

The host is resolved again at every attempt and refused if any address is private (unless
allowed), and the connection goes to an address that was checked, so a DNS answer that
changes between the check and the connection cannot point the portal inside the network.
Each socket operation times out after TIMEOUT seconds; a slow receiver is a failed attempt.
"""

from __future__ import annotations

import contextlib
import http.client
import socket
import ssl
import threading
from collections.abc import Mapping
from dataclasses import dataclass
from urllib.parse import urlsplit

from portal.services.webhooks import Resolve, check_destination, resolve_host

MAX_RESPONSE_BYTES = 1024  # of the answer kept for the delivery log


@dataclass(frozen=True)
class Answer:
    """The receiver's answer: its status and the start of its body."""

    status: int
    text: str

    @property
    def ok(self) -> bool:
        """A 2xx answer: the delivery landed."""
        return 200 <= self.status < 300


def _connect(addresses: list[str], port: int, timeout: float) -> socket.socket:
    """A socket to the first of ADDRESSES that answers."""
    last: OSError | None = None
    for address in addresses:
        try:
            return socket.create_connection((address, port), timeout=timeout)
        except OSError as error:
            last = error
    assert last is not None  # noqa: S101  (ADDRESSES is never empty)
    raise last


class _PinnedHTTP(http.client.HTTPConnection):
    """HTTP to addresses checked beforehand, whatever the host resolves to now."""

    def __init__(self, host: str, port: int, addresses: list[str], timeout: float) -> None:
        super().__init__(host, port, timeout=timeout)
        self._addresses = addresses
        self._seconds = timeout

    def connect(self) -> None:
        """Open the socket to a checked address."""
        self.sock = _connect(self._addresses, self.port, self._seconds)


class _PinnedHTTPS(http.client.HTTPSConnection):
    """HTTPS to addresses checked beforehand; the certificate is checked against the host."""

    def __init__(self, host: str, port: int, addresses: list[str], timeout: float) -> None:
        self._tls = ssl.create_default_context()
        super().__init__(host, port, timeout=timeout, context=self._tls)
        self._addresses = addresses
        self._seconds = timeout

    def connect(self) -> None:
        """Open the socket to a checked address, then TLS with the host's name."""
        raw = _connect(self._addresses, self.port, self._seconds)
        self.sock = self._tls.wrap_socket(raw, server_hostname=self.host)


def post(
    url: str,
    payload: bytes,
    headers: Mapping[str, str],
    *,
    timeout: float,
    allow_private: bool,
    resolve: Resolve = resolve_host,
) -> Answer:
    """POST PAYLOAD to URL; the answer, or an exception (refused address, timeout, ...)."""
    target, addresses = check_destination(url, allow_private=allow_private, resolve=resolve)
    parts = urlsplit(url.strip())
    path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    kind = _PinnedHTTPS if target.scheme == "https" else _PinnedHTTP
    connection = kind(target.host, target.port, addresses, timeout)
    # TIMEOUT bounds the whole attempt, not each socket call: a receiver that trickles a
    # byte at a time would otherwise keep the runner (and its lease) for as long as it likes.
    cut = _Deadline(connection)
    timer = threading.Timer(timeout, cut)
    timer.daemon = True
    timer.start()
    try:
        connection.request("POST", path, body=payload, headers=dict(headers))
        response = connection.getresponse()
        text = response.read(MAX_RESPONSE_BYTES).decode("utf-8", "replace")
    except (OSError, http.client.HTTPException):
        if cut.fired:
            raise TimeoutError(f"no complete answer within {timeout:g} s") from None
        raise
    finally:
        timer.cancel()
        connection.close()
    if cut.fired:
        raise TimeoutError(f"no complete answer within {timeout:g} s")
    return Answer(response.status, " ".join(text.split())[:300])


class _Deadline:
    """Called by a timer when an attempt's time is up: shuts its socket so every wait ends."""

    def __init__(self, connection: http.client.HTTPConnection) -> None:
        self.connection = connection
        self.fired = False

    def __call__(self) -> None:
        self.fired = True
        sock = self.connection.sock
        if sock is not None:
            with contextlib.suppress(OSError):  # already closed: nothing left to interrupt
                sock.shutdown(socket.SHUT_RDWR)
