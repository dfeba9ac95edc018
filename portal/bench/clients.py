"""Keep-alive HTTP clients over loopback (stdlib http.client), with a small cookie jar."""

from __future__ import annotations

import http.client
import re
import time
from dataclasses import dataclass, field
from http.cookies import SimpleCookie
from urllib.parse import urlencode

_CSRF = re.compile(rb'name="csrf_token"[^>]*value="([^"]+)"|value="([^"]+)"[^>]*name="csrf_token"')


@dataclass
class Answer:
    """One response: status, headers (lower-case names), body and how long it took."""

    status: int
    headers: dict[str, str]
    body: bytes
    seconds: float


@dataclass
class Client:
    """One keep-alive connection to 127.0.0.1:PORT; reconnects once if the server closed it."""

    port: int
    cookies: dict[str, str] = field(default_factory=dict)
    _connection: http.client.HTTPConnection | None = None

    def request(
        self,
        method: str,
        path: str,
        body: bytes | None = None,
        headers: dict[str, str] | None = None,
    ) -> Answer:
        """Send one request and read the whole answer, timing both.

        A kept-alive connection the server had closed is retried once on a new one, the
        time lost counted in; a request that fails on a new connection (a worker killed
        mid-request, say) answers status 0, which the bench counts as an unexpected answer.
        """
        sent = dict(headers or {})
        if self.cookies:
            sent["Cookie"] = "; ".join(f"{k}={v}" for k, v in self.cookies.items())
        started = time.perf_counter()
        while True:
            reused = self._connection is not None
            connection = self._connect()
            try:
                connection.request(method, path, body=body, headers=sent)
                response = connection.getresponse()
                data = response.read()
            except (http.client.HTTPException, OSError):
                self.close()
                if reused:
                    continue
                return Answer(0, {}, b"", time.perf_counter() - started)
            seconds = time.perf_counter() - started
            answer_headers = {k.lower(): v for k, v in response.getheaders()}
            for raw in response.headers.get_all("Set-Cookie") or []:
                for name, morsel in SimpleCookie(raw).items():
                    self.cookies[name] = morsel.value
            if response.will_close:
                self.close()
            return Answer(response.status, answer_headers, data, seconds)

    def get(self, path: str, headers: dict[str, str] | None = None) -> Answer:
        """GET PATH."""
        return self.request("GET", path, headers=headers)

    def sign_in(self, email: str, password: str) -> None:
        """Sign in through the login form (CSRF token and all); RuntimeError if refused."""
        page = self.get("/login")
        match = _CSRF.search(page.body)
        form = {"email": email, "password": password, "next": ""}
        if match:
            form["csrf_token"] = (match.group(1) or match.group(2)).decode()
        answer = self.request(
            "POST",
            "/login",
            body=urlencode(form).encode(),
            headers={"Content-Type": "application/x-www-form-urlencoded"},
        )
        if answer.status != 302:
            raise RuntimeError(f"signing in answered {answer.status}, not a redirect")

    def close(self) -> None:
        """Close the connection (the next request opens a new one)."""
        if self._connection is not None:
            self._connection.close()
            self._connection = None

    def _connect(self) -> http.client.HTTPConnection:
        if self._connection is None:
            self._connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=120)
        return self._connection
