"""Check messages with values read German on a German partner page (issue 14, Languages).

A finding carries its values (dates, key sizes, names) as params; the partner page words it
from its code and them (portal/web/partner/findings.py). Every finding the domain makes, in
every wording (one scenario per code, and one per further wording), must read in English
exactly as the domain wrote it, so the two wordings cannot drift apart, and differently in
German.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.serialization import pkcs12
from flask import Flask
from flask_babel import refresh

from portal.domain.certs import Code, Finding, Report, Severity, Usage
from portal.timeutil import utcnow
from portal.web.partner.findings import COMPOSED, TEMPLATES
from portal.web.partner.i18n import finding_text
from tests import certfactory as cf
from tests.domain.certs.helpers import NOW, check, good_cert, plain
from tests.domain.certs.test_model import SCENARIOS, Scenario
from tests.linkhelpers import share
from tests.test_languages import GERMAN, english_left, visible_text

# One scenario has a serial number of zero, which the cryptography library warns about.
pytestmark = pytest.mark.filterwarnings("ignore:Parsed a serial number:UserWarning")


def _simple(data: Callable[[], bytes], **kwargs: Any) -> Scenario:
    return lambda _tmp: (data(), kwargs)


def _pki_bundle() -> bytes:
    return cf.make_pki(now=NOW).bundle


def _issued_by_a_ca_of_its_issuers_name() -> bytes:
    """A certificate sent with a CA certificate of its issuer's name, on another key."""
    pki = cf.make_pki(now=NOW)
    impostor, _ = cf.make_intermediate(
        now=NOW, issuer=(pki.root, pki.root_key), cn="Partner Issuing CA", slot=7
    )
    return cf.pem(pki.leaf, impostor)


def _ca_key_usage_only() -> bytes:
    return cf.pem(good_cert(ca=True, usage_flags=cf.CA_KU))


def _pkcs12() -> bytes:
    key = cf.rsa_key()
    cert, _ = cf.make_cert(now=NOW, key=key)
    return pkcs12.serialize_key_and_certificates(
        b"x", key, cert, None, serialization.NoEncryption()
    )


# The wordings SCENARIOS (one per code) leave out.
MORE: dict[str, Scenario] = {
    "damaged": _simple(lambda: b"-----BEGIN CERTIFICATE-----\n!!!!\n-----END CERTIFICATE-----\n"),
    "cut off": _simple(lambda: b"-----BEGIN CERTIFICATE-----\nMIIBIjANBgkqhkiG9w0BAQEFAAOC\n"),
    "not yet valid at activation": _simple(
        lambda: cf.pem(good_cert(not_before=NOW + timedelta(days=10))),
        activate_at=NOW + timedelta(days=5),
    ),
    "expires soon after activation": _simple(
        lambda: cf.pem(good_cert(days=30)), activate_at=NOW + timedelta(days=5)
    ),
    "chain with root": _simple(_pki_bundle),
    "signed by another CA of the issuer's name": _simple(_issued_by_a_ca_of_its_issuers_name),
    "CA key usage only, for both": _simple(_ca_key_usage_only),
    "encryption only, for signing": _simple(
        lambda: cf.pem(good_cert(usage_flags=cf.ENCRYPTION_KU)), usage=Usage.SIGNING
    ),
    "EC key for encryption": _simple(
        lambda: cf.pem(good_cert(key_type="ec", usage_flags=cf.SIGNING_KU)),
        usage=Usage.ENCRYPTION,
    ),
    "no key usage": _simple(lambda: cf.pem(good_cert(usage_flags=None))),
    "key usage of a CA not self-signed": _simple(lambda: _chain_not_ca_by_key_usage()),
    "PKCS#12": _simple(_pkcs12),
    "plain": _simple(plain),
}


def _chain_not_ca_by_key_usage() -> bytes:
    """An issuer marked CA whose key usage leaves out Certificate Sign."""
    root, root_key = cf.make_ca(now=NOW)
    issuing, issuing_key = cf.make_intermediate(
        now=NOW, issuer=(root, root_key), usage_flags=cf.SIGNING_KU
    )
    return cf.pem(cf.make_cert(now=NOW, issuer=(issuing, issuing_key))[0], issuing)


def _findings(tmp_path: Path) -> list[Finding]:
    """Every finding of every scenario, each wording once."""
    seen: dict[tuple[str, str], Finding] = {}
    for name, scenario in [*((str(c), s) for c, s in SCENARIOS.items()), *MORE.items()]:
        data, kwargs = scenario(tmp_path / re.sub(r"\W", "_", name))
        kwargs.setdefault("now", NOW)
        report: Report = check(data, **kwargs)
        for finding in report.findings:
            seen.setdefault((str(finding.code), finding.message), finding)
    return list(seen.values())


@pytest.fixture(scope="module")
def findings(tmp_path_factory: pytest.TempPathFactory) -> list[Finding]:
    """The findings of the scenarios (inspecting them takes a few seconds: once per module)."""
    folder = tmp_path_factory.mktemp("scenarios")
    for name in [*map(str, SCENARIOS), *MORE]:
        (folder / re.sub(r"\W", "_", name)).mkdir()
    return _findings(folder)


def _text(app: Flask, finding: Finding, headers: dict[str, str]) -> str:
    with app.test_request_context("/s/token", headers=headers):
        refresh()
        return finding_text(finding)


def test_the_scenarios_reach_every_code_and_every_wording(findings: list[Finding]) -> None:
    codes = {str(f.code) for f in findings}
    assert codes == {str(c) for c in Code} - {str(Code.INTERNAL_ERROR)}
    worded = {(str(f.code), frozenset(f.params)) for f in findings if f.params}
    assert set(TEMPLATES) <= worded, set(TEMPLATES) - worded
    assert set(COMPOSED) <= {code for code, _ in worded}


def test_every_finding_reads_in_english_as_the_domain_wrote_it(
    app: Flask, findings: list[Finding]
) -> None:
    for finding in findings:
        assert _text(app, finding, {"Accept-Language": "en"}) == finding.message, finding.code


def test_every_finding_reads_german_on_a_german_page(app: Flask, findings: list[Finding]) -> None:
    for finding in findings:
        german = _text(app, finding, GERMAN)
        assert german != finding.message, (finding.code, finding.message)
        if finding.params:  # the values are written the German way too
            for value in finding.params.values():
                if hasattr(value, "tzinfo"):
                    assert f"{value:%Y-%m-%d}" not in german, german


def test_a_value_carrying_message_reads_german_dates_and_numbers(app: Flask) -> None:
    soon = check(cf.pem(good_cert(days=20, key_size=2048)))
    expiring = next(f for f in soon.findings if f.code == Code.EXPIRES_SOON)
    german = _text(app, expiring, GERMAN)
    assert "Das Zertifikat läuft am" in german
    assert re.search(r"\d{1,2}\. \w+ 2026, 12:00 UTC", german), german
    long = check(cf.pem(good_cert(days=6 * 365)))
    years = next(f for f in long.findings if f.code == Code.VALIDITY_TOO_LONG)
    assert "6,0 Jahre" in _text(app, years, GERMAN)
    assert "6.0 years" in _text(app, years, {"Accept-Language": "en"})


def test_a_usage_is_named_in_words_never_by_its_code(app: Flask) -> None:
    report = check(_ca_key_usage_only(), usage=Usage.BOTH)
    [refusal] = [f for f in report.findings if f.code == Code.KEY_USAGE_INCOMPATIBLE]
    assert "used for signing and encryption:" in refusal.message
    assert "for both" not in refusal.message
    assert "für Signatur und Verschlüsselung:" in _text(app, refusal, GERMAN)


def test_a_finding_the_catalog_cannot_word_is_shown_as_written(app: Flask) -> None:
    odd = Finding(Code.EXPIRED, Severity.ERROR, "Written elsewhere.", {"unheard_of": 1})
    assert _text(app, odd, GERMAN) == "Written elsewhere."


def test_the_api_reads_a_finding_as_before(findings: list[Finding]) -> None:
    for finding in findings:
        assert finding.to_dict() == {
            "code": str(finding.code),
            "severity": str(finding.severity),
            "message": finding.message,
        }


def test_a_german_page_with_a_value_carrying_warning_has_no_english_left(client, session) -> None:
    shared = share(session)
    session.commit()
    # RSA 2048 and a validity ending in 20 days: two warnings with values, to confirm.
    upload = cf.pem(cf.make_cert(now=utcnow(), days=20)[0])
    pages = {}
    for language, headers in (("en", {"Accept-Language": "en"}), ("de", GERMAN)):
        answer = client.post(
            f"{shared.page}/upload",
            data={"pasted": upload.decode(), "usage": "both"},
            headers=headers,
        )
        assert answer.status_code == 200, language
        pages[language] = visible_text(answer.get_data(as_text=True))
    assert "Warnung" in pages["de"]
    assert "Der RSA-Schlüssel hat 2048 Bit." in pages["de"]
    assert re.search(r"Das Zertifikat läuft am \d{1,2}\. \w+ \d{4}, \d\d:\d\d UTC ab", pages["de"])
    partner = shared.partner
    identity = partner.identity
    known = (
        partner.name, partner.as2_id, identity.organisation, identity.as2_id,
        "CN=PARTNERAS2,O=Partner Corp RSA", "Europe Berlin", "portal localhost",
    )  # fmt: skip
    left = english_left(pages["de"], pages["en"], *known)
    assert left == set(), left
