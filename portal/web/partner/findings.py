"""The certificate check messages the catalog translates, worded exactly as the domain words them.

The domain (portal.domain.certs) writes findings in English and knows nothing of languages;
the partner page shows `finding|finding_text`, which looks the message up in the catalog.
Only messages without values can match, so only those are listed (marked here so that
`pybabel extract` finds them); a message with values (a date, a key size, a name) is shown
as written. tests/test_languages.py checks each one is still the domain's wording.
"""

from __future__ import annotations

from flask_babel import lazy_gettext as _l

STATIC_FINDINGS = (
    _l(
        "The certificate's serial number is zero or negative. The standard forbids this and "
        "many systems reject such certificates. Please issue a new certificate."
    ),
    _l(
        "The subject or issuer name of the certificate is not encoded correctly, so AS2 "
        "software will reject it. Please issue a new certificate."
    ),
    _l(
        "Part of the certificate (its extensions) is not encoded correctly, so AS2 software "
        "will reject it. Please issue a new certificate."
    ),
    _l(
        "The certificate is self-signed. This is normal for AS2: we trust it because you send"
        " it to us directly, so please compare the fingerprints above."
    ),
    _l(
        "This file contains a private key. Never send a private key to anyone: it must stay "
        "on your own systems. As it has now left them, consider this key compromised: create "
        "a new key and certificate, and send us only the public certificate."
    ),
    _l(
        "We could not read this file as a certificate. Please send your public certificate as"
        " PEM text (starting with -----BEGIN CERTIFICATE-----), a DER file (.cer, .crt, .der)"
        " or a PKCS#7 file (.p7b, .p7c)."
    ),
    _l(
        "This is a PKCS#12 (.p12/.pfx) file, a format made to carry a private key, so we do "
        "not open it. Never send a private key to anyone: it must stay on your own systems. "
        "If this file held your private key, consider that key compromised: create a new key "
        "and certificate, and send us only the public certificate (.cer, .crt, .pem or .p7b)."
    ),
    _l(
        "This is a certificate signing request (CSR), not a certificate. Please send the "
        "certificate itself: your AS2 software can export it, or your CA returned it."
    ),
    _l(
        "The file was readable but contains no certificate. Please send your public "
        "certificate (usually a .cer, .crt, .pem or .p7b file)."
    ),
    _l(
        "We could not check this file because of an error on our side. Please try again later"
        " or contact us."
    ),
    _l(
        "This is the certificate we already have for you (same SHA-256 fingerprint). If you "
        "meant to send a new certificate, please check the file."
    ),
    _l(
        "The certificate's signature does not verify: the file was damaged or altered. Please"
        " export the certificate again and resend it."
    ),
    _l(
        "The certificate has a DSA key. DSA is obsolete and not supported for AS2. Please use"
        " an RSA key (3072 bits recommended)."
    ),
)
