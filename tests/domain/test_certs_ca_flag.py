"""The CA flag (basicConstraints CA:TRUE) on certificates made by openssl and keytool.

OpenSSL 3's `openssl req -x509` marks a self-signed certificate CA:TRUE by default, so the
commonest partner certificate carries the flag. Used as the partner's own certificate it is
accepted with a warning, as long as its key usage (if any) allows the declared usage; a CA
certificate that is not self-signed, or that issued another certificate of the upload, is
still refused as the partner's own. Certificates are made at test time by the real tools.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization

from portal.domain.certs import Code, Report, Severity, Usage, inspect
from portal.domain.vocab import usage_words
from tests import certfactory as cf
from tests import realtools
from tests.realtools import Made

ROOT_SUBJECT = "/CN=Partner Root CA/O=Partner Corp"


def check(data: bytes, usage: Usage = Usage.BOTH) -> Report:
    """Inspect at the wall clock (the tools date certificates from it); no internal error."""
    report = inspect(data, usage=usage, now=datetime.now(UTC))
    assert Code.INTERNAL_ERROR not in report.codes
    return report


def with_code(report: Report, code: Code) -> list[str]:
    return [f.message for f in report.findings if f.code == code]


def marked_ca_by_default(made: Made) -> Made:
    if not made.marked_ca:
        pytest.skip("this openssl does not mark `req -x509` certificates CA:TRUE by default")
    return made


@pytest.fixture(scope="module")
def tools_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("tools")


@pytest.fixture(scope="module")
def openssl_default(tools_dir: Path) -> Made:
    """`openssl req -x509 -newkey rsa:3072 -nodes ... -subj /CN=PARTNERAS2/...`, nothing else."""
    return marked_ca_by_default(realtools.openssl_self_signed(tools_dir, "partner"))


@pytest.fixture(scope="module")
def partner_root(tools_dir: Path) -> Made:
    """A partner's home-made CA: the same openssl command, named as a CA."""
    return marked_ca_by_default(
        realtools.openssl_self_signed(tools_dir, "root", subject=ROOT_SUBJECT)
    )


@pytest.fixture(scope="module")
def issued_by_root(tools_dir: Path, partner_root: Made) -> Made:
    """`openssl req -x509 -CA root.pem -CAkey root.key ...`: OpenSSL marks it CA:TRUE too."""
    made = realtools.openssl_issued(
        tools_dir, "issued", partner_root, subject="/CN=PARTNERAS2/O=Partner Corp"
    )
    return marked_ca_by_default(made)


@pytest.fixture(scope="module")
def keytool_made(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Made]:
    return realtools.keytool_certificates(
        tmp_path_factory.mktemp("keytool"),
        {"default": [], "bc:c": ["-ext", "bc:c"]},
    )


# ---------------------------------------------------------------------------
# Self-signed and flagged CA: accepted with a warning
# ---------------------------------------------------------------------------


@pytest.mark.parametrize("usage", list(Usage))
def test_openssl_default_self_signed_certificate_is_accepted_with_a_warning(
    openssl_default: Made, usage: Usage
) -> None:
    report = check(openssl_default.pem, usage)

    assert report.acceptable, [f.message for f in report.errors]
    assert Code.CA_CERTIFICATE not in report.codes
    (warning,) = [f for f in report.findings if f.code == Code.SELF_SIGNED_CA_FLAG]
    assert warning.severity is Severity.WARNING
    # Written for the partner: what the flag is, why it is accepted, how to be rid of it.
    assert "CA:TRUE" in warning.message
    assert "self-signed" in warning.message
    assert "-addext basicConstraints=critical,CA:FALSE" in warning.message
    assert report.certificate is not None
    assert report.certificate.is_ca
    assert report.certificate.self_signed


def test_following_the_warning_advice_removes_the_flag_and_keeps_the_key(
    openssl_default: Made, tmp_path: Path
) -> None:
    (message,) = with_code(check(openssl_default.pem), Code.SELF_SIGNED_CA_FLAG)
    advice = re.search(r"-addext (\S+)", message)
    assert advice is not None, message

    again = realtools.openssl_self_signed(
        tmp_path, "again", key=openssl_default.key_path, extra=["-addext", advice.group(1)]
    )

    assert again.basic_constraints is not None
    assert not again.basic_constraints.ca
    public = serialization.PublicFormat.SubjectPublicKeyInfo
    assert again.certificate.public_key().public_bytes(
        serialization.Encoding.DER, public
    ) == openssl_default.certificate.public_key().public_bytes(serialization.Encoding.DER, public)
    report = check(again.pem)
    assert report.acceptable
    assert report.warnings == []


def test_keytool_certificate_is_accepted(keytool_made: dict[str, Made]) -> None:
    made = keytool_made["default"]
    assert made.basic_constraints is None  # keytool's defaults: no basic constraints
    report = check(made.pem)
    assert report.acceptable, [f.message for f in report.errors]
    assert report.warnings == []
    assert Code.SELF_SIGNED in report.codes


def test_keytool_certificate_marked_ca_is_accepted_with_a_warning(
    keytool_made: dict[str, Made],
) -> None:
    made = keytool_made["bc:c"]  # `-ext bc:c`, as keytool's documentation shows for a CA
    assert made.marked_ca
    report = check(made.pem)
    assert report.acceptable, [f.message for f in report.errors]
    assert [f.code for f in report.warnings] == [Code.SELF_SIGNED_CA_FLAG]


# ---------------------------------------------------------------------------
# Key usage still has to allow the declared usage
# ---------------------------------------------------------------------------


@pytest.fixture(scope="module")
def cert_signing_only(tools_dir: Path, openssl_default: Made) -> Made:
    """openssl.cnf's commented-out CA key usage, switched on: keyCertSign and cRLSign only."""
    return realtools.openssl_self_signed(
        tools_dir,
        "cert-signing-only",
        key=openssl_default.key_path,
        extra=["-addext", "keyUsage=critical,keyCertSign,cRLSign"],
    )


@pytest.mark.parametrize("usage", list(Usage))
def test_self_signed_ca_with_key_usage_only_for_cert_signing_is_refused(
    cert_signing_only: Made, usage: Usage
) -> None:
    assert cert_signing_only.marked_ca
    report = check(cert_signing_only.pem, usage)

    assert not report.acceptable
    # Refused for its key usage, not for being a (self-signed) CA.
    assert [f.code for f in report.errors] == [Code.KEY_USAGE_INCOMPATIBLE]
    message = report.errors[0].message
    assert f"used for {usage_words(usage)}" in message
    assert "Certificate Sign, CRL Sign" in message
    assert "only let a certificate authority issue certificates" in message


@pytest.mark.parametrize(
    ("key_usage", "usage", "accepted"),
    [
        ("digitalSignature,keyEncipherment,keyCertSign,cRLSign", Usage.BOTH, True),
        ("digitalSignature,keyCertSign", Usage.SIGNING, True),
        ("nonRepudiation,keyCertSign", Usage.SIGNING, True),
        ("keyEncipherment,keyCertSign", Usage.ENCRYPTION, True),
        ("digitalSignature,keyCertSign", Usage.ENCRYPTION, False),
        ("keyEncipherment,keyCertSign", Usage.BOTH, False),
    ],
)
def test_self_signed_ca_key_usage_must_allow_the_declared_usage(
    openssl_default: Made, tmp_path: Path, key_usage: str, usage: Usage, accepted: bool
) -> None:
    made = realtools.openssl_self_signed(
        tmp_path, "ca", key=openssl_default.key_path, extra=["-addext", f"keyUsage={key_usage}"]
    )
    assert made.marked_ca

    report = check(made.pem, usage)

    assert [f.code for f in report.errors] == ([] if accepted else [Code.KEY_USAGE_INCOMPATIBLE])
    assert Code.SELF_SIGNED_CA_FLAG in report.codes


# ---------------------------------------------------------------------------
# CA certificates that are not the partner's own: refused
# ---------------------------------------------------------------------------


@pytest.mark.parametrize("root_first", [True, False], ids=["root-first", "issued-first"])
def test_ca_that_issued_another_certificate_in_the_upload_is_refused(
    partner_root: Made, issued_by_root: Made, root_first: bool
) -> None:
    upload = [partner_root.pem, issued_by_root.pem]
    report = check(b"".join(upload if root_first else reversed(upload)))

    assert not report.acceptable
    # The self-signed root issued the other certificate: it is the chain, never the
    # partner's own certificate, so its flag earns no exception.
    assert Code.SELF_SIGNED_CA_FLAG not in report.codes
    assert report.certificate is not None
    assert report.certificate.der == cf.der(issued_by_root.certificate)
    assert [c.der for c in report.chain] == [cf.der(partner_root.certificate)]
    (message,) = with_code(report, Code.CA_CERTIFICATE)
    assert "issued by 'O=Partner Corp,CN=Partner Root CA'" in message
    assert "CA:FALSE" in message


@pytest.fixture(scope="module")
def lookalike(tools_dir: Path, partner_root: Made) -> Made:
    """Issued by the root under the root's own name: self-signed by its names only."""
    return marked_ca_by_default(
        realtools.openssl_issued(tools_dir, "lookalike", partner_root, subject=ROOT_SUBJECT)
    )


@pytest.mark.parametrize("case", ["own-name", "issuer-name"])
def test_ca_certificate_not_self_signed_is_refused(
    issued_by_root: Made, lookalike: Made, case: str
) -> None:
    made = issued_by_root if case == "own-name" else lookalike
    report = check(made.pem)  # its issuer is not in the file

    assert not report.acceptable
    assert Code.SELF_SIGNED_CA_FLAG not in report.codes
    (message,) = with_code(report, Code.CA_CERTIFICATE)
    assert "certificate authority (basic constraints CA:TRUE)" in message
    assert "issued by 'O=Partner Corp,CN=Partner Root CA'" in message
    assert "CA:FALSE" in message
