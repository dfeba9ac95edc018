"""The role matrix: every internal route, every role, decided on the server."""

from __future__ import annotations

from datetime import timedelta

import pytest
from flask import Flask

from portal.services import api_tokens, campaigns, outbox, webhooks, windows
from portal.timeutil import utcnow
from tests import factories

ALL = {"admin", "approver", "operator", "viewer"}
EDITORS = {"admin", "operator"}
ADMINS = {"admin"}
APPROVERS = {"admin", "approver"}

# endpoint -> (method, roles allowed). Every staff route must be listed here.
EXPECTED: dict[str, tuple[str, set[str]]] = {
    "staff.overview": ("GET", ALL),
    "staff.identities": ("GET", ALL),
    "staff.identity_view": ("GET", ALL),
    "staff.identity_new": ("GET", EDITORS),
    "staff.identity_edit": ("GET", EDITORS),
    "staff.partners": ("GET", ALL),
    "staff.partner_view": ("GET", ALL),
    "staff.partner_new": ("GET", EDITORS),
    "staff.partner_edit": ("GET", EDITORS),
    "staff.users_list": ("GET", ADMINS),
    "staff.user_new": ("GET", ADMINS),
    "staff.user_edit": ("GET", ADMINS),
    "staff.user_reset_password": ("POST", ADMINS),
    "staff.user_reset_two_factor": ("POST", ADMINS),
    "staff.audit_log": ("GET", ALL),
    "staff.audit_csv": ("GET", ALL),
    "staff.certificate_generate": ("POST", EDITORS),
    "staff.csr_create": ("POST", EDITORS),
    "staff.csr_download": ("GET", ALL),
    "staff.csr_complete": ("POST", EDITORS),
    "staff.certificate_import": ("GET", EDITORS),
    "staff.certificate_view": ("GET", ALL),
    "staff.certificate_download": ("GET", ALL),
    "staff.certificate_export": ("POST", EDITORS),
    "staff.link_create": ("POST", EDITORS),
    "staff.link_revoke": ("POST", EDITORS),
    "staff.link_email": ("POST", EDITORS),
    "staff.submissions_list": ("GET", ALL),
    "staff.submission_view": ("GET", ALL),
    "staff.submission_approve": ("POST", APPROVERS),
    "staff.submission_reject": ("POST", APPROVERS),
    "staff.certificate_schedule": ("POST", EDITORS),
    "staff.certificate_approve_schedule": ("POST", APPROVERS),
    "staff.certificate_reschedule": ("POST", APPROVERS),
    "staff.certificate_cancel": ("POST", APPROVERS),
    "staff.certificate_rollback": ("POST", APPROVERS),
    "staff.window_propose": ("POST", EDITORS),
    "staff.window_accept": ("POST", EDITORS),
    "staff.window_calendar": ("GET", ALL),
    "staff.partner_certificate_upload": ("POST", EDITORS),
    "staff.outbox_list": ("GET", ADMINS),
    "staff.outbox_message": ("GET", ADMINS),
    "staff.outbox_retry": ("POST", ADMINS),
    "staff.tokens_list": ("GET", ADMINS),
    "staff.token_create": ("POST", ADMINS),
    "staff.token_revoke": ("POST", ADMINS),
    "staff.webhooks_list": ("GET", ADMINS),
    "staff.webhook_create": ("POST", ADMINS),
    "staff.webhook_view": ("GET", ADMINS),
    "staff.webhook_remove": ("POST", ADMINS),
    "staff.webhook_test": ("POST", ADMINS),
    "staff.webhook_retry": ("POST", ADMINS),
    "staff.campaigns_list": ("GET", ALL),
    "staff.campaign_start": ("POST", EDITORS),
    "staff.campaign_view": ("GET", ALL),
    "staff.campaign_csv": ("GET", ALL),
    "staff.campaign_resend": ("POST", EDITORS),
    "staff.campaign_revoke": ("POST", EDITORS),
    "staff.campaign_include": ("POST", EDITORS),
    "staff.campaign_resend_at_risk": ("POST", EDITORS),
    "staff.campaign_revoke_at_risk": ("POST", EDITORS),
    "staff.campaign_request_start": ("POST", EDITORS),
    "staff.upload_request_send": ("POST", EDITORS),
    "staff.expiring_list": ("GET", ALL),
    "auth.change_password": ("GET", ALL),
    "auth.confirm": ("GET", ALL),
    "auth.two_factor_setup": ("GET", ALL),
    "auth.two_factor_disable": ("POST", ALL),
    "auth.two_factor_new_codes": ("POST", ALL),
    "auth.logout": ("POST", ALL),
}
# Partner pages need no account: the signed link token is the credential (test_partner_page.py).
PUBLIC = {
    "auth.login",
    # The sign-in's second step: only a pending first step (in the session) gets past it.
    "auth.two_factor_login",
    "health.healthz",
    "static",
    "partner.link_page",
    "partner.download",
    "partner.upload",
    "partner.machine_upload",
    "partner.propose_window",
    "partner.acknowledge",
    "partner.accept_window",
    "partner.window_calendar",
    "partner.certificates_feed",
    "partner.time_zones",
    "partner.set_language",
    # The API takes no account either: an API token is the credential (test_api_tokens.py).
    "api.whoami",
    "api.config",
    "api.identity_keystore",
    # The API's own description is public: it holds no data (test_openapi.py).
    "api.openapi",
}
# Every API route but its description answers 401 without a token.
API = sorted(e for e in PUBLIC if e.startswith("api.") and e != "api.openapi")


def test_every_route_is_in_the_matrix(app: Flask) -> None:
    endpoints = {rule.endpoint for rule in app.url_map.iter_rules()}
    assert endpoints - PUBLIC == set(EXPECTED)


def test_every_staff_view_declares_its_permission(app: Flask) -> None:
    for endpoint, view in app.view_functions.items():
        if endpoint.startswith("staff."):
            assert hasattr(view, "required_permission"), endpoint


def _url(app: Flask, endpoint: str, ids: dict[str, int]) -> str:
    rule = next(r for r in app.url_map.iter_rules() if r.endpoint == endpoint)
    with app.test_request_context():
        from flask import url_for

        return url_for(endpoint, **{arg: ids[arg] for arg in rule.arguments})


@pytest.fixture(scope="module")
def csr_pem() -> str:
    """One certificate request for the module: RSA key generation is the slow part."""
    from portal.domain.certs import Usage, create_csr

    return create_csr(
        as2_id="MATRIX", organisation="Matrix", usage=Usage.BOTH, key_size=2048
    ).csr_pem


@pytest.fixture
def ids(app: Flask, session, csr_pem: str) -> dict[str, object]:
    from portal.extensions import keyring
    from portal.models import PendingKey

    partner = factories.partner(session)
    target = factories.user(session, role="viewer", password="a long test password")
    certificate = factories.identity_certificate(session, keyring(), partner.identity)
    pending = PendingKey(
        identity_id=partner.identity_id,
        usage="both",
        key_size=2048,
        csr_pem=csr_pem,
        encrypted_private_key=b"not used by these tests",
    )
    session.add(pending)
    session.flush()
    link = factories.share_link(session, partner)
    submission = factories.submission(session, link)
    window = windows.propose_window(
        session, factories.ACTOR, link, starts_at=utcnow() + timedelta(days=3), timezone="UTC",
        contact_name=None, contact_email=None, now=utcnow(),
    )  # fmt: skip
    message = outbox.queue_email(
        session, recipients=["edi@globex.example"], subject="Matrix", body="Hello"
    )
    assert message is not None
    token = api_tokens.create(session, factories.ACTOR, "matrix", ["config:read"], now=utcnow())
    hook = webhooks.create(
        session, factories.ACTOR, keyring(), "http://127.0.0.1:9/hook", ["link.acknowledged"],
        now=utcnow(), allow_private=True,
    ).endpoint  # fmt: skip
    delivery = webhooks.send_test(session, factories.ACTOR, hook, now=utcnow())
    campaign = campaigns.start(
        session, factories.ACTOR,
        campaigns.StartRequest(partner.identity, certificate.sha256, utcnow() + timedelta(days=10)),
        now=utcnow(),
    )  # fmt: skip
    return {
        "campaign_id": campaign.id,
        "endpoint_id": hook.id,
        "delivery_id": delivery.id,
        "token_id": token.token.id,
        "identity_id": partner.identity_id,
        "partner_id": partner.id,
        "user_id": target.id,
        "certificate_id": certificate.id,
        "pending_id": pending.id,
        "link_id": link.id,
        "submission_id": submission.id,
        "window_id": window.id,
        "message_id": message.id,
        "fmt": "pem",
    }


@pytest.mark.parametrize("role", sorted(ALL))
@pytest.mark.parametrize("endpoint", sorted(EXPECTED))
def test_role_matrix(app: Flask, client_as, ids, role: str, endpoint: str) -> None:
    method, allowed = EXPECTED[endpoint]
    response = client_as(role).open(_url(app, endpoint, ids), method=method)
    if role in allowed:
        # 422: allowed in, but the empty form posted here is refused.
        assert response.status_code in (200, 302, 422), response.status_code
        if response.status_code == 302:
            # Allowed means not bounced to sign-in (logout itself lands on /login).
            assert "/login?next=" not in response.headers["Location"]
    else:
        assert response.status_code == 403


@pytest.mark.parametrize("endpoint", sorted(EXPECTED))
def test_anonymous_is_sent_to_login(app: Flask, client, ids, endpoint: str) -> None:
    method, _ = EXPECTED[endpoint]
    response = client.open(_url(app, endpoint, ids), method=method)
    assert response.status_code == 302
    assert response.headers["Location"].startswith("/login")


@pytest.mark.parametrize(
    ("role", "url", "data"),
    [
        ("viewer", "/identities/new", {"name": "X", "as2_id": "XID"}),
        ("approver", "/partners/new", {"name": "X", "as2_id": "XID"}),
        ("operator", "/users/new", {"email": "x@example.com", "role": "admin"}),
    ],
)
def test_forbidden_posts_change_nothing(client_as, session, role, url, data) -> None:
    from sqlalchemy import func, select

    from portal.models import AuditEvent

    browser = client_as(role)
    changes = select(func.count()).where(AuditEvent.action != "auth.access_denied")
    denials = select(func.count()).where(AuditEvent.action == "auth.access_denied")
    before, denied_before = session.scalar(changes), session.scalar(denials)
    assert browser.post(url, data=data).status_code == 403
    assert session.scalar(changes) == before
    # The only trace is the refusal itself (portal.web.access audits every 403).
    assert session.scalar(denials) == denied_before + 1


@pytest.mark.parametrize("role", [None, "admin"])
@pytest.mark.parametrize("endpoint", API)
def test_the_api_wants_a_token_not_a_staff_session(app, client, client_as, role, endpoint) -> None:
    rule = next(r for r in app.url_map.iter_rules() if r.endpoint == endpoint)
    method = "POST" if "POST" in (rule.methods or ()) else "GET"
    browser = client if role is None else client_as(role)
    response = browser.open(_url(app, endpoint, {"as2_id": "OURAS2"}), method=method)
    assert response.status_code == 401
    assert response.is_json
