"""Webhooks: registered by admins, written with their cause, posted signed by the runner.

Receivers are real HTTP servers on loopback (http.server in a thread) that check the
signature. Nothing here sends traffic anywhere else: hosts other than loopback go through
a fake resolver and are never connected to.
"""

from __future__ import annotations

import hashlib
import hmac
import io
import json
import logging
import re
import socket
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from functools import partial
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from sqlalchemy import func, select, text
from sqlalchemy.orm import Session

from portal import create_app, jobs
from portal.database import make_engine
from portal.domain import webhooks as rules
from portal.domain.vocab import SUBSCRIBABLE_EVENTS, WebhookEvent
from portal.extensions import db, keyring
from portal.migrate import upgrade
from portal.models import AuditEvent, WebhookDelivery, WebhookEndpoint
from portal.services import approvals, schedule, submissions, webhook_http, webhooks
from portal.services.actor import Actor
from portal.services.errors import ConflictError, NotFoundError, ServiceError
from portal.timeutil import utcnow
from tests import certfactory, factories
from tests.conftest import reconfigure, test_settings
from tests.schedulehelpers import OVERLAP, receive, schedule_ours, share

T0 = datetime(2026, 12, 1, 9, 0, tzinfo=UTC)
SECRET_RE = re.compile(r"whsec_[A-Za-z0-9_-]{40,}")


# A receiver on loopback ---------------------------------------------------------------------


class Receiver:
    """What a test receiver got, and how it answers: STATUSES in turn (then 200)."""

    def __init__(self) -> None:
        self.secret = ""
        self.requests: list[dict[str, Any]] = []
        self.statuses: list[int] = []
        self.hold: threading.Event | None = None  # set: answers at once; unset: waits
        self.lock = threading.Lock()
        self.port = 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/hooks/portal?x=1"

    def take(self, headers: dict[str, str], payload: bytes) -> int:
        verified = rules.verify(
            self.secret,
            timestamp=headers.get(rules.TIMESTAMP_HEADER, ""),
            signature_header=headers.get(rules.SIGNATURE_HEADER, ""),
            payload=payload,
            now=datetime.now(UTC),
        )
        with self.lock:
            self.requests.append(
                {"headers": headers, "body": payload, "json": json.loads(payload), "ok": verified}
            )
            status = self.statuses.pop(0) if self.statuses else 200
        return status if verified else 401

    @property
    def ids(self) -> list[int]:
        return [request["json"]["id"] for request in self.requests]


class Handler(BaseHTTPRequestHandler):
    def do_POST(self) -> None:
        receiver: Receiver = self.server.receiver  # type: ignore[attr-defined]
        payload = self.rfile.read(int(self.headers.get("Content-Length", "0")))
        if receiver.hold is not None:
            receiver.hold.wait(10)
        status = receiver.take(dict(self.headers.items()), payload)
        try:
            self.send_response(status)
            self.send_header("Content-Length", "12")
            self.end_headers()
            self.wfile.write(b"receiver ok.")
        except OSError:
            pass  # the portal gave up waiting (the slow-receiver test)

    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    """A webhook receiver on loopback that verifies each delivery's signature."""
    found = Receiver()
    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    server.receiver = found  # type: ignore[attr-defined]
    found.port = server.server_address[1]
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield found
    if found.hold is not None:
        found.hold.set()
    server.shutdown()
    server.server_close()


def closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def register(session: Session, receiver: Receiver, events: list[str] | None = None) -> Any:
    made = webhooks.create(
        session, factories.ACTOR, keyring(), receiver.url,
        events or [event.value for event in SUBSCRIBABLE_EVENTS], now=T0, allow_private=True,
    )  # fmt: skip
    receiver.secret = made.secret
    return made.endpoint


def run(session: Session, now: datetime, *, timeout: float = 5.0, runner: str = "test") -> Any:
    post = partial(webhook_http.post, timeout=timeout, allow_private=True)
    return jobs.deliver_webhooks(session, post, keyring(), now=now, runner=runner)


def deliveries(session: Session) -> list[WebhookDelivery]:
    session.expire_all()
    return list(session.scalars(select(WebhookDelivery).order_by(WebhookDelivery.id)))


# The signature ----------------------------------------------------------------------------


def test_the_signature_recipe_and_what_it_refuses() -> None:
    payload = rules.body(7, "submission.received", T0, {"b": 1, "a": "x"})
    assert payload == (
        b'{"data":{"a":"x","b":1},"event":"submission.received","id":7,'
        b'"occurred_at":"2026-12-01T09:00:00Z"}'
    )
    stamp = int(T0.timestamp())
    headers = rules.headers("s" * 32, delivery_id=7, event="e", timestamp=stamp, payload=payload)
    expected = hmac.new(b"s" * 32, f"{stamp}.".encode() + payload, hashlib.sha256).hexdigest()
    assert headers["X-Portal-Signature"] == f"sha256={expected}"
    assert headers["X-Portal-Timestamp"] == str(stamp)
    assert headers["X-Portal-Delivery"] == "7"

    def ok(**change: Any) -> bool:
        fields = {
            "timestamp": str(stamp),
            "signature_header": headers["X-Portal-Signature"],
            "payload": payload,
            "now": T0 + timedelta(seconds=30),
        }
        return rules.verify("s" * 32, **{**fields, **change})

    assert ok()
    assert not ok(payload=payload.replace(b"x", b"y"))
    assert not ok(timestamp=str(stamp + 1))
    assert not ok(timestamp="soon")
    assert not ok(now=T0 + timedelta(minutes=6))  # a replay, too late
    assert not ok(signature_header="sha256=" + "0" * 64)
    assert not ok(signature_header="sha256=\u00e9")  # a forged, non-ASCII header: False, no raise


@pytest.mark.parametrize(
    "address",
    [
        "2002:7f00:1::",  # 6to4 around 127.0.0.1
        "2002:a9fe:a9fe::",  # 6to4 around 169.254.169.254 (cloud metadata)
        "2001:0:a00:1::",  # Teredo with its server at 10.0.0.1
    ],
)
def test_ipv6_forms_carrying_a_private_ipv4_address_are_refused(address: str) -> None:
    assert rules.address_problem(address) is not None


def test_a_6to4_address_around_a_public_ipv4_address_is_judged_as_public() -> None:
    assert rules.address_problem("2002:0808:0808::1") is None  # 8.8.8.8 inside


def test_backoff_doubles_and_is_capped() -> None:
    assert [rules.backoff(n) for n in (1, 2, 3, 4)] == [timedelta(minutes=m) for m in (1, 2, 4, 8)]
    assert rules.backoff(40) == timedelta(hours=6)


# URLs and addresses -----------------------------------------------------------------------


def refused(session: Session, url: str, *, allow_private: bool = False, resolve: Any = None) -> str:
    extra = {"resolve": resolve} if resolve else {}
    with pytest.raises(ServiceError) as error:
        webhooks.create(
            session, factories.ACTOR, keyring(), url, ["submission.received"], now=T0,
            allow_private=allow_private, **extra,
        )  # fmt: skip
    assert error.value.field == "url"
    return error.value.message


@pytest.mark.parametrize(
    ("url", "says"),
    [
        ("http://127.0.0.1:8080/hook", "127.0.0.1 is a loopback address"),
        ("http://localhost/hook", "loopback"),
        ("https://[::1]/hook", "::1 is a loopback address"),
        ("http://[::ffff:127.0.0.1]/hook", "loopback"),
        ("http://10.1.2.3/hook", "10.1.2.3 is a private address"),
        ("http://192.168.0.10/hook", "private"),
        ("http://169.254.169.254/latest/meta-data", "link-local"),
        ("http://0.0.0.0/hook", "unspecified"),
    ],
)
def test_loopback_and_private_addresses_are_refused_without_the_setting(
    session: Session, url: str, says: str
) -> None:
    message = refused(session, url)
    assert says in message
    assert "PORTAL_WEBHOOK_ALLOW_PRIVATE" in message


@pytest.mark.parametrize(
    ("url", "says"),
    [
        ("ftp://example.com/hook", "Only http:// and https:// URLs"),
        ("file:///etc/passwd", "Only http:// and https:// URLs"),
        ("not a url", "spaces"),
        ("example.com/hook", "Only http:// and https:// URLs"),
        ("http://", "no host name"),
        ("", "Give the receiver's URL"),
        ("https://user:pw@example.com/hook", "no user name or password"),
        ("http://example.com:99999/hook", "not a usable URL"),
        ("https://" + "a" * 2000 + ".com/", "longer than 2000"),
    ],
)
def test_garbage_urls_are_refused_with_a_clear_message(
    session: Session, url: str, says: str
) -> None:
    assert says in refused(session, url, allow_private=True)


def test_unresolvable_hosts_are_refused(session: Session, monkeypatch) -> None:
    def no_such_host(*_: Any, **__: Any) -> Any:
        raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")

    monkeypatch.setattr(webhooks.socket, "getaddrinfo", no_such_host)
    message = refused(session, "https://hooks.nowhere.invalid/x", allow_private=True)
    assert message == (
        "The host hooks.nowhere.invalid does not resolve (Name or service not known)."
    )


def test_one_private_answer_among_public_ones_refuses_the_host(session: Session) -> None:
    mixed = lambda host, port: ["93.184.216.34", "10.0.0.7"]  # noqa: E731
    assert "10.0.0.7 is a private address" in refused(
        session, "https://hooks.example.com/x", resolve=mixed
    )
    public = lambda host, port: ["93.184.216.34"]  # noqa: E731
    made = webhooks.create(
        session, factories.ACTOR, keyring(), "https://hooks.example.com/x",
        ["submission.received"], now=T0, allow_private=False, resolve=public,
    )  # fmt: skip
    assert made.endpoint.url == "https://hooks.example.com/x"


def test_the_address_is_checked_again_at_delivery(session: Session) -> None:
    """A host that resolved to a public address at registration and now to a private one."""
    rebound = lambda host, port: ["10.0.0.7"]  # noqa: E731
    with pytest.raises(rules.WebhookUrlError, match=re.escape("10.0.0.7 is a private address")):
        webhook_http.post(
            "https://hooks.example.com/x", b"{}", {}, timeout=1, allow_private=False,
            resolve=rebound,
        )  # fmt: skip
    endpoint = webhooks.create(
        session, factories.ACTOR, keyring(), "https://hooks.example.com/x",
        ["submission.received"], now=T0, allow_private=False,
        resolve=lambda host, port: ["93.184.216.34"],
    ).endpoint  # fmt: skip
    webhooks.send_test(session, factories.ACTOR, endpoint, now=T0)
    post = partial(webhook_http.post, timeout=1, allow_private=False, resolve=rebound)
    result = jobs.deliver_webhooks(session, post, keyring(), now=T0, runner="test")
    assert (result.sent, result.failed) == (0, 1)
    (delivery,) = deliveries(session)
    assert "10.0.0.7 is a private address" in (delivery.last_error or "")


def test_the_setting_defaults_to_refusing_private_addresses(tmp_path, database_url) -> None:
    from portal.config import DEFAULTS
    from portal.settings import settings

    assert DEFAULTS["WEBHOOK_ALLOW_PRIVATE"] is False
    assert DEFAULTS["WEBHOOK_TIMEOUT"] == 10
    app = create_app({**test_settings(tmp_path, database_url), "WEBHOOK_ALLOW_PRIVATE": False})
    with app.app_context():
        assert settings().webhook_allow_private is False
        assert settings().webhook_timeout == 10.0


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("WEBHOOK_ALLOW_PRIVATE", "yes"),
        ("WEBHOOK_TIMEOUT", 0),
        ("WEBHOOK_TIMEOUT", 500),
        ("WEBHOOK_TIMEOUT", "ten"),
        ("WEBHOOK_TIMEOUT", True),
    ],
)
def test_bad_webhook_settings_are_refused_at_start(tmp_path, database_url, name, value) -> None:
    from portal.config import ConfigError

    with pytest.raises(ConfigError, match=f"PORTAL_{name}"):
        create_app({**test_settings(tmp_path, database_url), name: value})


# Registration, secrets, removal -----------------------------------------------------------


def test_the_secret_is_kept_encrypted_and_never_audited(session: Session, receiver) -> None:
    endpoint = register(session, receiver, ["submission.received", "link.acknowledged"])
    dump = repr(session.execute(text("SELECT * FROM webhook_endpoints")).all()) + repr(
        session.execute(text("SELECT * FROM audit_events")).all()
    )
    assert SECRET_RE.fullmatch(receiver.secret)
    assert receiver.secret not in dump
    assert receiver.secret[6:].encode() not in endpoint.encrypted_secret
    assert webhooks.decrypt_secret(keyring(), endpoint.id, endpoint.encrypted_secret) == (
        receiver.secret
    )
    assert endpoint.events == ["link.acknowledged", "submission.received"]
    event = session.scalar(select(AuditEvent).where(AuditEvent.action == "webhook.created"))
    assert event is not None
    assert event.details == {"url": receiver.url, "events": endpoint.events}


def test_a_given_secret_must_be_long_enough(session: Session) -> None:
    with pytest.raises(ServiceError, match="24 to 200 characters") as error:
        webhooks.create(
            session, factories.ACTOR, keyring(), "http://127.0.0.1:9/x", ["link.acknowledged"],
            now=T0, allow_private=True, secret="short",
        )  # fmt: skip
    assert error.value.field == "secret"


@pytest.mark.parametrize("events", [[], [""], ["certificate.exploded"], ["webhook.test"]])
def test_unknown_events_are_refused(session: Session, events: list[str]) -> None:
    with pytest.raises(ServiceError) as error:
        webhooks.create(
            session, factories.ACTOR, keyring(), "http://127.0.0.1:9/x", events, now=T0,
            allow_private=True,
        )  # fmt: skip
    assert error.value.field == "events"


def test_the_database_refuses_unknown_event_names(session: Session, receiver) -> None:
    from sqlalchemy.exc import IntegrityError

    endpoint = register(session, receiver)
    with pytest.raises(IntegrityError), session.begin_nested():
        session.execute(
            text("INSERT INTO webhook_subscriptions (endpoint_id, event) VALUES (:e, 'nope')"),
            {"e": endpoint.id},
        )


def test_a_removed_endpoint_receives_nothing_and_keeps_its_log(session: Session, receiver):
    endpoint = register(session, receiver)
    webhooks.send_test(session, factories.ACTOR, endpoint, now=T0)
    webhooks.remove(session, factories.ACTOR, endpoint.id, now=T0)
    assert webhooks.emit(session, WebhookEvent.SUBMISSION_RECEIVED, {}, now=T0) == 0
    assert run(session, T0).sent == 0
    assert receiver.requests == []
    assert len(deliveries(session)) == 1
    with pytest.raises(ConflictError, match="removed already"):
        webhooks.remove(session, factories.ACTOR, endpoint.id, now=T0)
    with pytest.raises(ServiceError, match="was removed"):
        webhooks.send_test(session, factories.ACTOR, endpoint, now=T0)
    with pytest.raises(NotFoundError):
        webhooks.remove(session, factories.ACTOR, 999_999, now=T0)
    actions = session.scalars(
        select(AuditEvent.action).where(AuditEvent.object_type == "webhook_endpoint")
    ).all()
    assert actions == ["webhook.created", "webhook.test_queued", "webhook.removed"]


def test_keys_rotate_re_encrypts_webhook_secrets(app, runner, session, receiver) -> None:
    endpoint = register(session, receiver)
    session.commit()
    newer = factories.new_kek()
    reconfigure(app, KEY_ENCRYPTION_KEYS=[*app.config["KEY_ENCRYPTION_KEYS"], newer])
    from portal.extensions import init_secrets

    init_secrets(app)
    result = runner.invoke(args=["keys", "rotate"])
    assert result.exit_code == 0, result.output
    assert "Re-encrypted 1 of 1 webhook secrets." in result.output
    session.expire_all()
    assert not keyring().needs_rotation(session.get(WebhookEndpoint, endpoint.id).encrypted_secret)


# Delivery -----------------------------------------------------------------------------------


def test_a_delivery_is_signed_and_verified_by_the_receiver(session: Session, receiver) -> None:
    endpoint = register(session, receiver, ["submission.received"])
    assert webhooks.emit(session, WebhookEvent.SUBMISSION_RECEIVED, {"n": 1}, now=T0) == 1
    assert webhooks.emit(session, WebhookEvent.LINK_ACKNOWLEDGED, {"n": 2}, now=T0) == 0
    (delivery,) = deliveries(session)

    result = run(session, T0)

    assert (result.sent, result.failed) == (1, 0)
    (request,) = receiver.requests
    assert request["ok"], "the receiver could not verify the signature"
    assert request["json"] == {
        "id": delivery.id,
        "event": "submission.received",
        "occurred_at": "2026-12-01T09:00:00Z",
        "data": {"n": 1},
    }
    assert request["headers"]["X-Portal-Event"] == "submission.received"
    assert request["headers"]["X-Portal-Delivery"] == str(delivery.id)
    assert request["headers"]["Content-Type"] == "application/json"
    assert abs(int(request["headers"]["X-Portal-Timestamp"]) - time.time()) < 60
    (delivery,) = deliveries(session)
    assert webhooks.delivery_state(delivery) is webhooks.DeliveryState.DELIVERED
    assert (delivery.delivered_at, delivery.last_status, delivery.attempts) == (T0, 200, 1)
    assert delivery.claimed_until is None
    assert run(session, T0 + timedelta(hours=1)).sent == 0  # delivered once
    assert endpoint.id == delivery.endpoint_id


def test_500_then_200_is_retried_with_backoff(session: Session, receiver) -> None:
    register(session, receiver)
    receiver.statuses = [500, 500, 200]
    webhooks.emit(session, WebhookEvent.SUBMISSION_APPROVED, {"n": 1}, now=T0)

    first = run(session, T0)
    assert (first.sent, first.failed) == (0, 1)
    assert first.last_error == "HTTP 500: receiver ok."
    (delivery,) = deliveries(session)
    assert webhooks.delivery_state(delivery) is webhooks.DeliveryState.RETRYING
    assert (delivery.attempts, delivery.last_status) == (1, 500)
    assert delivery.next_attempt_at == T0 + timedelta(minutes=1)

    assert run(session, T0 + timedelta(seconds=59)).failed == 0  # not due yet
    assert len(receiver.requests) == 1
    assert run(session, T0 + timedelta(minutes=1)).failed == 1
    (delivery,) = deliveries(session)
    assert delivery.next_attempt_at == T0 + timedelta(minutes=1 + 2)
    assert run(session, T0 + timedelta(minutes=3)).sent == 1

    assert len(receiver.requests) == 3
    assert len({request["body"] for request in receiver.requests}) == 1  # the same delivery
    assert all(request["ok"] for request in receiver.requests)
    (delivery,) = deliveries(session)
    assert (delivery.attempts, delivery.last_status, delivery.last_error) == (3, 200, None)


def test_a_slow_receiver_times_out_and_is_retried(session: Session, receiver) -> None:
    register(session, receiver)
    webhooks.emit(session, WebhookEvent.CERTIFICATE_SCHEDULED, {}, now=T0)
    receiver.hold = threading.Event()  # answers only when released

    started = time.monotonic()
    result = run(session, T0, timeout=0.3)
    assert time.monotonic() - started < 5
    assert result.failed == 1
    assert "TimeoutError" in (result.last_error or "")
    receiver.hold.set()
    receiver.hold = None

    assert run(session, T0 + timedelta(minutes=1)).sent == 1
    (delivery,) = deliveries(session)
    assert delivery.delivered_at is not None
    assert delivery.attempts == 2


def test_a_receiver_that_trickles_its_answer_is_cut_off_at_the_timeout() -> None:
    """The timeout bounds the whole attempt: one byte every 0.1 s never trips a socket timeout."""
    listener = socket.create_server(("127.0.0.1", 0))
    port = listener.getsockname()[1]

    def trickle() -> None:
        connection, _ = listener.accept()
        with connection:
            connection.recv(65536)
            for byte in b"HTTP/1.1 200 OK\r\nX-Slow: " + b"a" * 40:  # 4.5 s in all, then close
                try:
                    connection.sendall(bytes([byte]))
                except OSError:
                    return  # the portal hung up: what this test wants
                time.sleep(0.1)

    serving = threading.Thread(target=trickle, daemon=True)
    serving.start()
    try:
        with pytest.raises(TimeoutError, match=r"within 0\.5 s"):
            webhook_http.post(
                f"http://127.0.0.1:{port}/hook", b"{}", {}, timeout=0.5, allow_private=True
            )
    finally:
        serving.join(timeout=10)
        listener.close()


def test_the_lease_runs_from_the_claim_not_from_the_start_of_the_run(session, receiver) -> None:
    register(session, receiver)
    webhooks.emit(session, WebhookEvent.CERTIFICATE_SCHEDULED, {}, now=T0)
    claimed_at = T0 + timedelta(minutes=30)  # the run began at T0; slow receivers took 30 min
    leases = []

    def post(url: str, payload: bytes, headers: Any) -> webhook_http.Answer:
        (delivery,) = deliveries(session)
        leases.append(delivery.claimed_until)
        return webhook_http.Answer(200, "ok")

    jobs.deliver_webhooks(
        session, post, keyring(), now=T0, runner="r", stamp=lambda: int(claimed_at.timestamp())
    )
    assert leases == [claimed_at + webhooks.LEASE]


def test_a_receiver_that_is_down_is_retried_then_marked_failed(session: Session) -> None:
    url = f"http://127.0.0.1:{closed_port()}/hook"
    endpoint = webhooks.create(
        session, factories.ACTOR, keyring(), url, ["link.acknowledged"], now=T0,
        allow_private=True,
    ).endpoint  # fmt: skip
    webhooks.emit(session, WebhookEvent.LINK_ACKNOWLEDGED, {}, now=T0)
    moment = T0
    for attempt in range(1, webhooks.MAX_ATTEMPTS + 1):
        result = run(session, moment)
        assert result.failed == 1, attempt
        assert "ConnectionRefusedError" in (result.last_error or "")
        moment += rules.backoff(attempt)
    (delivery,) = deliveries(session)
    assert webhooks.delivery_state(delivery) is webhooks.DeliveryState.FAILED
    assert run(session, moment + timedelta(days=1)).failed == 0  # waits for an admin
    webhooks.retry(session, factories.ACTOR, delivery, now=moment)
    (delivery,) = deliveries(session)
    assert (delivery.attempts, delivery.next_attempt_at) == (0, moment)
    assert webhooks.delivery_state(delivery) is webhooks.DeliveryState.RETRYING
    with pytest.raises(ServiceError, match="only a failed delivery"):
        webhooks.retry(session, factories.ACTOR, delivery, now=moment)
    assert endpoint.id == delivery.endpoint_id


def test_the_secret_never_reaches_the_logs(session: Session, receiver, caplog) -> None:
    register(session, receiver)
    receiver.statuses = [500]
    webhooks.emit(session, WebhookEvent.SUBMISSION_REJECTED, {}, now=T0)
    with caplog.at_level(logging.DEBUG):
        run(session, T0)
        run(session, T0 + timedelta(minutes=1))
    assert receiver.secret not in caplog.text
    assert all(receiver.secret not in (d.last_error or "") for d in deliveries(session))


# Claims: never twice --------------------------------------------------------------------


def test_a_claimed_delivery_cannot_be_claimed_again_until_its_lease_ends(
    session: Session, receiver
) -> None:
    register(session, receiver)
    webhooks.emit(session, WebhookEvent.SUBMISSION_RECEIVED, {}, now=T0)
    (delivery,) = deliveries(session)
    first = webhooks.claim(session, delivery.id, now=T0, runner="a")
    assert first is not None
    assert webhooks.due_ids(session, now=T0, limit=10) == []
    assert webhooks.claim(session, delivery.id, now=T0, runner="b") is None
    later = T0 + webhooks.LEASE - timedelta(seconds=1)
    assert webhooks.claim(session, delivery.id, now=later, runner="b") is None
    # Runner a died after posting: once the lease ends the delivery goes again (at least once).
    second = webhooks.claim(session, delivery.id, now=T0 + webhooks.LEASE, runner="b")
    assert second is not None
    assert second.payload == first.payload
    # The late runner a can no longer record anything over b's claim.
    assert not webhooks.record_delivered(session, first, status=200, now=later)
    assert webhooks.record_delivered(session, second, status=200, now=later)


def test_two_runners_at_once_post_each_delivery_once(tmp_path, fresh_databases, receiver):
    url = fresh_databases.new_url()
    engine = make_engine(url)
    upgrade(engine)
    engine.dispose()
    app = create_app(test_settings(tmp_path, url))
    count = 30
    with app.app_context():
        register(db.session, receiver, ["submission.received"])
        for number in range(count):
            webhooks.emit(db.session, WebhookEvent.SUBMISSION_RECEIVED, {"n": number}, now=T0)
        db.session.commit()
    barrier = threading.Barrier(2)
    results: list[Any] = []
    errors: list[BaseException] = []

    def one_runner(name: str) -> None:
        try:
            with app.app_context():
                barrier.wait()
                results.append(run(db.session, T0, runner=name))
        except BaseException as error:  # reported below
            errors.append(error)

    threads = [threading.Thread(target=one_runner, args=(name,)) for name in ("a", "b")]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(120)
    assert errors == []
    assert sorted(receiver.ids) == sorted(set(receiver.ids))  # nothing posted twice
    assert len(receiver.ids) == count
    assert sum(result.sent for result in results) == count
    with app.app_context():
        assert (
            db.session.scalar(
                select(func.count())
                .select_from(WebhookDelivery)
                .where(WebhookDelivery.delivered_at.is_(None))
            )
            == 0
        )
        db.engine.dispose()


# Events from the services ---------------------------------------------------------------


def events_of(receiver: Receiver) -> list[str]:
    return [request["json"]["event"] for request in receiver.requests]


def test_upload_approve_and_reject_emit_their_events(session, approver, receiver) -> None:
    register(session, receiver)
    partner = factories.partner(session)
    link, token = share(session, partner)
    now = utcnow()
    first = receive(session, link, now=now)
    second = receive(session, link, now=now)
    approvals.approve_submission(
        session, Actor.for_user(approver), first, activate_at=now + timedelta(days=2), now=now
    )
    approvals.reject_submission(
        session, Actor.for_user(approver), second, reason="Wrong CN", now=now
    )
    run(session, now)

    assert events_of(receiver) == [
        "submission.received",
        "submission.received",
        "submission.approved",
        "certificate.scheduled",
        "submission.rejected",
    ]
    received, _, approved, scheduled, rejected = (r["json"]["data"] for r in receiver.requests)
    assert received["owner"] == {
        "type": "partner",
        "as2_id": partner.as2_id,
        "name": partner.name,
        "environment": partner.environment,
        "identity_as2_id": partner.identity.as2_id,
    }
    assert received["submission"]["sha256"] == first.sha256
    assert received["received_via"] == "link"
    assert approved["certificate"]["sha256"] == first.sha256
    assert scheduled["certificate"]["activate_at"] == iso(now + timedelta(days=2))
    assert rejected["reason"] == "Wrong CN"
    everything = b"".join(request["body"] for request in receiver.requests)
    assert token.encode() not in everything
    assert link.id.encode() not in everything
    assert b"PRIVATE KEY" not in everything


def iso(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def test_staff_upload_emits_submission_received(session, make_user, receiver) -> None:
    register(session, receiver, ["submission.received"])
    operator = make_user("operator")
    partner = factories.partner(session)
    cert, _ = certfactory.make_cert(now=utcnow(), days=400, key=certfactory.rsa_key(3072))
    submissions.submit_by_staff(
        session, Actor.for_user(operator), partner, data=certfactory.pem(cert), usage="both",
        now=utcnow(), overlap=OVERLAP, confirm_warnings=True,
    )  # fmt: skip
    run(session, utcnow())
    (request,) = receiver.requests
    assert request["json"]["data"]["received_via"] == "staff"


def test_machine_upload_emits_submission_received(client, session, receiver) -> None:
    register(session, receiver, ["submission.received"])
    _link, token = share(session, factories.partner(session))
    cert, _ = certfactory.make_cert(now=utcnow(), days=400, key=certfactory.rsa_key(3072))
    response = client.post(
        f"/s/{token}/certificate",
        data={"certificate": (io.BytesIO(certfactory.pem(cert)), "c.pem"), "usage": "both"},
        content_type="multipart/form-data",
    )
    assert response.status_code in (200, 201), response.get_data(as_text=True)
    run(session, utcnow())
    assert events_of(receiver) == ["submission.received"]


def test_acknowledging_on_the_partner_page_emits_link_acknowledged(client, session, receiver):
    register(session, receiver, ["link.acknowledged"])
    identity = factories.identity(session)
    factories.identity_certificate(session, keyring(), identity)
    _link, token = share(session, factories.partner(session, identity))
    response = client.post(
        f"/s/{token}/acknowledge", data={"installed_on": "2026-12-01", "contact_name": "Grace"}
    )
    assert response.status_code == 302, response.get_data(as_text=True)
    run(session, utcnow())
    (request,) = receiver.requests
    data = request["json"]["data"]
    assert data["installed_on"] == "2026-12-01"
    assert data["contact_name"] == "Grace"
    assert token not in request["body"].decode()


def test_rollback_emits_certificate_rolled_back(session, make_user, receiver) -> None:
    register(session, receiver, ["certificate.rolled_back"])
    proposer, second = make_user("operator"), make_user("approver")
    identity = factories.identity(session)
    old = factories.identity_certificate(session, keyring(), identity)
    new = factories.identity_certificate(session, keyring(), identity)
    t0 = utcnow()
    schedule_ours(session, old, t0, proposer=proposer, approver=second, now=t0)
    schedule_ours(session, new, t0 + timedelta(days=1), proposer=proposer, approver=second, now=t0)
    moment = t0 + timedelta(days=1, hours=1)
    schedule.rollback(
        session, Actor.for_user(second), new, [old, new], reason="Partner cannot verify",
        now=moment, rules=schedule.Rules(overlap=OVERLAP),
    )  # fmt: skip
    run(session, moment)
    (request,) = receiver.requests
    data = request["json"]["data"]
    assert data["certificate"]["sha256"] == new.sha256
    assert data["previous"]["sha256"] == old.sha256
    assert data["reason"] == "Partner cannot verify"
    assert data["owner"]["type"] == "identity"
    assert data["owner"]["as2_id"] == identity.as2_id


def test_certificate_activated_leaves_only_when_the_time_comes(
    app, runner, session, approver, receiver, clock
) -> None:
    register(session, receiver, ["certificate.activated", "certificate.scheduled"])
    now = utcnow().replace(microsecond=0)
    clock.set(now)
    link, _ = share(session, factories.partner(session))
    submission = receive(session, link, now=now)
    activate_at = now + timedelta(hours=2)
    approvals.approve_submission(
        session, Actor.for_user(approver), submission, activate_at=activate_at, now=now
    )
    session.commit()

    assert runner.invoke(args=["run-due"]).exit_code == 0
    assert events_of(receiver) == ["certificate.scheduled"]
    clock.set(activate_at - timedelta(seconds=1))
    assert runner.invoke(args=["run-due"]).exit_code == 0
    assert events_of(receiver) == ["certificate.scheduled"]

    clock.set(activate_at)
    result = runner.invoke(args=["run-due"])
    assert result.exit_code == 0, result.output
    assert "Posted 1 webhook deliveries, 0 failed" in result.output
    assert events_of(receiver) == ["certificate.scheduled", "certificate.activated"]
    activated = receiver.requests[-1]["json"]
    assert activated["occurred_at"] == iso(activate_at)
    assert activated["data"]["certificate"]["sha256"] == submission.sha256
    assert all(request["ok"] for request in receiver.requests)
    clock.advance(timedelta(hours=1))
    assert runner.invoke(args=["run-due"]).exit_code == 0
    assert len(receiver.requests) == 2  # announced once


def test_a_down_receiver_never_blocks_the_request_that_caused_the_event(
    app, approver_client, session, received
) -> None:
    url = f"http://127.0.0.1:{closed_port()}/hook"
    webhooks.create(
        session, factories.ACTOR, keyring(), url, ["submission.rejected"], now=T0,
        allow_private=True,
    )  # fmt: skip
    submission = received["submission"]
    started = time.monotonic()
    response = approver_client.post(
        f"/submissions/{submission.id}/reject", data={"reject-reason": "Wrong CN"}
    )
    assert response.status_code == 302
    assert time.monotonic() - started < 5
    (delivery,) = deliveries(session)
    assert (delivery.event, delivery.attempts, delivery.delivered_at) == (
        "submission.rejected",
        0,
        None,
    )


def test_run_due_says_when_a_webhook_failed_and_exits_1(app, runner, session) -> None:
    url = f"http://127.0.0.1:{closed_port()}/hook"
    endpoint = webhooks.create(
        session, factories.ACTOR, keyring(), url, ["link.acknowledged"], now=utcnow(),
        allow_private=True,
    ).endpoint  # fmt: skip
    webhooks.send_test(session, factories.ACTOR, endpoint, now=utcnow())
    session.commit()
    result = runner.invoke(args=["run-due"])
    assert result.exit_code == 1
    assert "Posted 0 webhook deliveries, 1 failed" in result.output
    assert "Last webhook error: ConnectionRefusedError" in result.output


# The admin pages ------------------------------------------------------------------------


def test_admin_registers_a_webhook_and_sees_the_secret_once(admin_client, session) -> None:
    assert b"Webhooks" in admin_client.get("/webhooks").data
    response = admin_client.post(
        "/webhooks",
        data={
            "url": "http://127.0.0.1:9/hook",
            "events": ["submission.received", "link.acknowledged"],
        },
    )
    assert response.status_code == 200, response.get_data(as_text=True)
    assert response.headers["Cache-Control"] == "no-store"
    secret = SECRET_RE.search(response.get_data(as_text=True))
    assert secret is not None
    endpoint = session.scalar(select(WebhookEndpoint))
    assert endpoint is not None
    assert endpoint.events == ["link.acknowledged", "submission.received"]
    assert endpoint.created_by_id is not None
    for page in ("/webhooks", f"/webhooks/{endpoint.id}"):
        shown = admin_client.get(page).get_data(as_text=True)
        assert "http://127.0.0.1:9/hook" in shown
        assert secret.group(0) not in shown


def test_the_page_refuses_bad_input_with_422(app, admin_client, session) -> None:
    for data in (
        {"url": "ftp://example.com/x", "events": ["submission.received"]},
        {"url": "http://127.0.0.1:9/x", "events": []},
        {"url": "http://127.0.0.1:9/x", "events": ["nope"]},
        {"url": "", "events": ["submission.received"]},
    ):
        response = admin_client.post("/webhooks", data=data)
        assert response.status_code == 422, data
        assert SECRET_RE.search(response.get_data(as_text=True)) is None
    reconfigure(app, WEBHOOK_ALLOW_PRIVATE=False)
    response = admin_client.post(
        "/webhooks", data={"url": "http://127.0.0.1:9/x", "events": ["submission.received"]}
    )
    assert response.status_code == 422
    assert "127.0.0.1 is a loopback address" in response.get_data(as_text=True)
    assert session.scalar(select(func.count()).select_from(WebhookEndpoint)) == 0


def test_test_button_log_pagination_retry_and_remove(app, admin_client, session, receiver):
    endpoint = register(session, receiver)
    reconfigure(app, PAGE_SIZE=2)
    for _ in range(3):
        assert admin_client.post(f"/webhooks/{endpoint.id}/test").status_code == 302
    assert run(session, utcnow()).sent == 3
    assert events_of(receiver) == ["webhook.test"] * 3
    assert all(request["ok"] for request in receiver.requests)

    first = admin_client.get(f"/webhooks/{endpoint.id}").get_data(as_text=True)
    ids = [d.id for d in deliveries(session)]
    assert f"<td>#{ids[2]}</td>" in first
    assert f"<td>#{ids[0]}</td>" not in first
    assert "Page 1 of 2" in first
    second = admin_client.get(f"/webhooks/{endpoint.id}?page=2").get_data(as_text=True)
    assert f"<td>#{ids[0]}</td>" in second

    failed = deliveries(session)[0]
    failed.delivered_at, failed.attempts, failed.last_error = None, webhooks.MAX_ATTEMPTS, "x"
    session.commit()
    assert "Retry" in admin_client.get(f"/webhooks/{endpoint.id}?page=2").get_data(as_text=True)
    response = admin_client.post(
        f"/webhooks/{endpoint.id}/deliveries/{failed.id}/retry", follow_redirects=True
    )
    assert b"will be posted again" in response.data
    again = admin_client.post(
        f"/webhooks/{endpoint.id}/deliveries/{failed.id}/retry", follow_redirects=True
    )
    assert b"only a failed delivery can be retried" in again.data
    assert admin_client.get(f"/webhooks/{endpoint.id}/deliveries/999999/retry").status_code == 405

    assert admin_client.post(f"/webhooks/{endpoint.id}/remove").status_code == 302
    session.expire_all()
    assert session.get(WebhookEndpoint, endpoint.id).removed_at is not None
    assert b"removed" in admin_client.get("/webhooks").data
    refused_test = admin_client.post(f"/webhooks/{endpoint.id}/test", follow_redirects=True)
    assert b"was removed" in refused_test.data


def test_the_menu_shows_webhooks_to_admins_only(client_as) -> None:
    assert b'href="/webhooks"' in client_as("admin").get("/").data
    assert b'href="/webhooks"' not in client_as("operator").get("/").data


# The command line -----------------------------------------------------------------------


def test_cli_add_list_remove(runner, session) -> None:
    added = runner.invoke(
        args=[
            "webhook",
            "add",
            "http://127.0.0.1:9/hook",
            "--events",
            "submission.received,link.acknowledged",
        ]
    )
    assert added.exit_code == 0, added.output
    lines = added.output.strip().splitlines()
    assert re.fullmatch(
        r"Registered webhook (\d+) for link.acknowledged, submission.received\.", lines[0]
    )
    secret = lines[-1]
    assert SECRET_RE.fullmatch(secret)
    endpoint_id = int(lines[0].split()[2])
    endpoint = session.get(WebhookEndpoint, endpoint_id)
    assert webhooks.decrypt_secret(keyring(), endpoint.id, endpoint.encrypted_secret) == secret

    listed = runner.invoke(args=["webhook", "list", "--json"])
    assert listed.exit_code == 0
    (row,) = json.loads(listed.output)["webhooks"]
    assert row["id"] == endpoint_id
    assert row["events"] == ["link.acknowledged", "submission.received"]
    assert row["state"] == "active"
    assert secret not in listed.output
    assert "http://127.0.0.1:9/hook" in runner.invoke(args=["webhook", "list"]).output

    removed = runner.invoke(args=["webhook", "remove", str(endpoint_id)])
    assert removed.exit_code == 0, removed.output
    listed = json.loads(runner.invoke(args=["webhook", "list", "--json"]).output)
    assert listed["webhooks"][0]["state"] == "removed"


def test_cli_secret_from_stdin(runner, session) -> None:
    secret = "a shared secret of thirty characters"
    added = runner.invoke(
        args=[
            "webhook",
            "add",
            "http://127.0.0.1:9/x",
            "--events",
            "link.acknowledged",
            "--secret-stdin",
        ],
        input=secret + "\n",
    )
    assert added.exit_code == 0, added.output
    assert secret not in added.output
    endpoint = session.scalar(select(WebhookEndpoint))
    assert webhooks.decrypt_secret(keyring(), endpoint.id, endpoint.encrypted_secret) == secret


def test_cli_refusals_are_exit_1_on_one_line(app, runner, session, make_user) -> None:
    operator = make_user("operator")
    session.commit()
    for args in (
        ["webhook", "add", "ftp://example.com/x", "--events", "link.acknowledged"],
        ["webhook", "add", "not a url", "--events", "link.acknowledged"],
        [
            "webhook",
            "add",
            "http://127.0.0.1:9/x",
            "--events",
            "link.acknowledged",
            "--as",
            operator.email,
        ],
        ["webhook", "remove", "999999"],
    ):
        result = runner.invoke(args=args)
        assert result.exit_code == 1, (args, result.output)
        assert len(result.output.strip().splitlines()) == 1, result.output
    reconfigure(app, WEBHOOK_ALLOW_PRIVATE=False)
    loopback = runner.invoke(
        args=["webhook", "add", "http://127.0.0.1:9/x", "--events", "link.acknowledged"]
    )
    assert loopback.exit_code == 1
    assert "loopback" in loopback.output
    assert session.scalar(select(func.count()).select_from(WebhookEndpoint)) == 0


def test_cli_usage_errors_are_exit_2(runner, session) -> None:
    for args, stdin in (
        (["webhook", "add", "http://127.0.0.1:9/x"], None),
        (["webhook", "add", "http://127.0.0.1:9/x", "--events", "nope"], None),
        (["webhook", "add", "http://127.0.0.1:9/x", "--events", ","], None),
        (["webhook", "add", "--events", "link.acknowledged"], None),
        (
            [
                "webhook",
                "add",
                "http://127.0.0.1:9/x",
                "--events",
                "link.acknowledged",
                "--secret-stdin",
            ],
            "",
        ),
        (["webhook", "remove"], None),
        (["webhook", "remove", "abc"], None),
    ):
        assert runner.invoke(args=args, input=stdin).exit_code == 2, args
    assert session.scalar(select(func.count()).select_from(WebhookEndpoint)) == 0
