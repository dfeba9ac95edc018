"""Fixtures shared by the import and export tests."""

from __future__ import annotations

import pytest
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import rsa

from tests import certfactory as cf
from tests.domain.certs.helpers import NOW


@pytest.fixture(scope="module")
def keyed() -> tuple[x509.Certificate, rsa.RSAPrivateKey, x509.Certificate]:
    """A CA-issued certificate, its key and the CA, for import and export tests."""
    ca, ca_key = cf.make_ca(now=NOW)
    key = cf.rsa_key(2048, slot=4)
    leaf, _ = cf.make_cert(now=NOW, key=key, issuer=(ca, ca_key))
    return leaf, key, ca
