"""The certificate check messages in the page's language, worded as the domain words them.

The domain (portal.domain.certs) writes findings in English and knows nothing of languages;
the partner page shows `finding|finding_text`. A finding without values is looked up in the
catalog by its message (STATIC_FINDINGS lists those, marked here so that `pybabel extract`
finds them). A finding with values (a date, a key size, a name) carries them as `params`,
and is worded from its code and the names of its params with a template below, the values
written for the page's language. tests/test_finding_words.py checks that every finding the
domain makes reads in English exactly as the domain wrote it, so the wording cannot drift.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from functools import reduce
from typing import Any

from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l

from portal.domain.certs import Code, Finding

# Writes one value (a moment, a number, a name) for the page's language.
ValueText = Callable[[Any], str]
# Writes a certificate usage ("both", "signing") in words for the page's language.
UsageText = Callable[[str], str]

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
    _l(
        "Your certificate is marked as a certificate authority (basic constraints CA:TRUE), a "
        "flag meant for certificates that issue other certificates. OpenSSL sets it by default"
        " on self-signed certificates (openssl req -x509). We accept it because the certificate"
        " is self-signed and you use it as your own AS2 certificate, but some AS2 software "
        "refuses CA certificates for signing or encrypting messages. To remove the flag, create"
        " the certificate again with the option -addext basicConstraints=critical,CA:FALSE "
        "added to your openssl req -x509 command (-key with your key file keeps the same key);"
        " with Java's keytool, leave out -ext bc:c."
    ),
    _l("Key usage: not restricted (no key usage extension)"),
)


def _key(code: Code, *names: str) -> tuple[str, frozenset[str]]:
    return (str(code), frozenset(names))


# Findings with values: (code, the names of its params) -> the template of its message.
TEMPLATES: dict[tuple[str, frozenset[str]], Any] = {
    _key(Code.TOO_LARGE, "size", "limit"): _l(
        "The file is %(size)s KB, but a certificate file is at most %(limit)s KB. Please send "
        "only your public certificate (.cer, .crt, .pem or .p7b)."
    ),
    _key(Code.UNREADABLE, "number"): _l(
        "Certificate number %(number)s in the file could not be read: the text is damaged, "
        "perhaps changed or cut while copying. Please export the certificate again and resend "
        "it."
    ),
    _key(Code.UNREADABLE, "label"): _l(
        "The certificate text is cut off: the line '-----END %(label)s-----' is missing. Please "
        "copy the whole text, including the BEGIN and END lines."
    ),
    _key(Code.MULTIPLE_END_ENTITIES, "count", "subjects"): _l(
        "The file contains %(count)s separate certificates that could each be yours "
        "(%(subjects)s). Please send one certificate at a time, with its CA certificates if it "
        "has any."
    ),
    _key(Code.EXPIRED, "not_after"): _l(
        "The certificate expired on %(not_after)s. Please send a current certificate."
    ),
    _key(Code.NOT_YET_VALID, "not_before"): _l(
        "The certificate only becomes valid on %(not_before)s, after today. Please send a "
        "certificate that is valid by then, or agree a later change date."
    ),
    _key(Code.NOT_YET_VALID, "not_before", "activation"): _l(
        "The certificate only becomes valid on %(not_before)s, after the planned activation on "
        "%(activation)s. Please send a certificate that is valid by then, or agree a later "
        "change date."
    ),
    _key(Code.EXPIRED_AT_ACTIVATION, "not_after", "activation"): _l(
        "The certificate expires on %(not_after)s, before the planned activation on "
        "%(activation)s. Please send a certificate that is still valid then."
    ),
    _key(Code.EXPIRES_SOON, "not_after", "days"): _l(
        "The certificate expires on %(not_after)s, only %(days)s days after today, so we will "
        "have to exchange certificates again soon. A certificate with a longer validity would "
        "avoid that."
    ),
    _key(Code.EXPIRES_SOON, "not_after", "days", "activation"): _l(
        "The certificate expires on %(not_after)s, only %(days)s days after the planned "
        "activation on %(activation)s, so we will have to exchange certificates again soon. A "
        "certificate with a longer validity would avoid that."
    ),
    _key(Code.VALIDITY_TOO_LONG, "years"): _l(
        "The certificate is valid for about %(years)s years. More than 5 years is discouraged:"
        " if the key were ever exposed, it would stay usable for a long time."
    ),
    _key(Code.RSA_KEY_TOO_SMALL, "bits", "minimum", "recommended"): _l(
        "The RSA key has %(bits)s bits; at least %(minimum)s are required and %(recommended)s "
        "recommended. Please create a new key and certificate."
    ),
    _key(Code.RSA_2048, "bits", "recommended"): _l(
        "The RSA key has %(bits)s bits. This is accepted, but %(recommended)s bits are "
        "recommended for certificates used beyond 2030."
    ),
    _key(Code.EC_CURVE_NOT_ALLOWED, "curve"): _l(
        "The key uses the elliptic curve %(curve)s; only P-256, P-384 and P-521 are accepted. "
        "Please use one of those or an RSA key."
    ),
    _key(Code.UNSUPPORTED_KEY_TYPE, "key_type"): _l(
        "The certificate has a key of type %(key_type)s, which AS2 software does not support. "
        "Please use an RSA key (3072 bits recommended)."
    ),
    _key(Code.WEAK_SIGNATURE_HASH, "algorithm"): _l(
        "The certificate is signed with %(algorithm)s, which is broken and rejected by current "
        "AS2 software. Please issue a new certificate signed with SHA-256 or stronger."
    ),
    _key(Code.CA_CERTIFICATE, "issuer"): _l(
        "This certificate is marked as a certificate authority (basic constraints CA:TRUE) and "
        "was issued by '%(issuer)s': it is a CA certificate, meant for issuing other "
        "certificates, not the certificate of your AS2 station. Please send your own AS2 "
        "certificate, one not marked as a CA (CA:FALSE or no basic constraints); its CA "
        "certificates may come along in the same file. If this was meant to be your AS2 "
        "certificate, have it issued again as an end-entity certificate (CA:FALSE), or create a"
        " self-signed certificate instead."
    ),
    _key(Code.UNUSUAL_EXTENDED_KEY_USAGE, "purposes"): _l(
        "The certificate is restricted to purposes that are unusual for AS2 (%(purposes)s). "
        "Some AS2 software rejects such a certificate for signing or encrypting messages; one "
        "without extended key usage, or with Email Protection, is the safe choice."
    ),
    _key(Code.BAD_SIGNATURE, "issuer"): _l(
        "The certificate's signature does not verify with the key of the CA certificate "
        "'%(issuer)s' sent with it: that CA certificate has the name of your certificate's "
        "issuer but did not issue it (perhaps an older or newer CA certificate of the same "
        "name), or the file was altered. Please send the CA certificates your CA gave you with "
        "this certificate, or the certificate alone."
    ),
    _key(Code.CHAIN_BAD_SIGNATURE, "subject", "issuer"): _l(
        "The CA certificate '%(subject)s' in the file names '%(issuer)s' as its issuer, but the "
        "signature does not verify with the key of the certificate of that name sent with it: "
        "these CA certificates do not belong together (perhaps one is an older or newer "
        "version), or the file was altered. Please send the CA certificates your CA gave you "
        "with this certificate, or the certificate alone."
    ),
    _key(Code.CHAIN_EXPIRED, "subject", "not_after"): _l(
        "The issuing certificate '%(subject)s' included in the file expired on %(not_after)s. "
        "Partners who check the chain will reject your certificate; please include the current"
        " CA certificate."
    ),
    _key(Code.CHAIN_NOT_YET_VALID, "subject", "not_before"): _l(
        "The issuing certificate '%(subject)s' included in the file only becomes valid on "
        "%(not_before)s. Until then partners who check the chain will reject your certificate;"
        " please include the CA certificate valid today."
    ),
    _key(Code.CHAIN_UNRELATED, "subject", "issuer"): _l(
        "The certificate '%(subject)s' in the file did not issue your certificate (issued by "
        "'%(issuer)s') nor any of its CA certificates, so we do not keep it. If your "
        "certificate was issued by an intermediate CA, please include that CA's certificate "
        "instead."
    ),
    _key(Code.TRAILING_DATA, "count"): _l(
        "The file has %(count)s extra bytes after the certificate; they were ignored. If the "
        "certificate shown is not the one you meant, please export it again."
    ),
    _key(Code.SUBJECT, "subject"): _l("Subject: %(subject)s"),
    _key(Code.ISSUER, "issuer"): _l("Issuer: %(issuer)s"),
    _key(Code.SERIAL, "serial"): _l("Serial number: %(serial)s"),
    _key(Code.VALIDITY, "not_before", "not_after", "days"): _l(
        "Valid from %(not_before)s to %(not_after)s (%(days)s days)"
    ),
    _key(Code.KEY, "key_type"): _l("Key: %(key_type)s"),
    _key(Code.KEY, "key_type", "bits"): _l("Key: %(key_type)s, %(bits)s bits"),
    _key(Code.KEY, "key_type", "curve"): _l("Key: %(key_type)s, curve %(curve)s"),
    _key(Code.SIGNATURE_ALGORITHM, "algorithm"): _l("Signature algorithm: %(algorithm)s"),
    _key(Code.KEY_USAGE, "usages"): _l("Key usage: %(usages)s"),
    _key(Code.EXTENDED_KEY_USAGE, "purposes"): _l("Extended key usage: %(purposes)s"),
    _key(Code.FINGERPRINT_SHA256, "fingerprint"): _l("SHA-256 fingerprint: %(fingerprint)s"),
    _key(Code.FINGERPRINT_SHA1, "fingerprint"): _l("SHA-1 fingerprint: %(fingerprint)s"),
}


def _joined(items: tuple[str, ...], template: Any) -> str:
    """ITEMS joined pairwise with TEMPLATE ("%(first)s or %(second)s"), in order."""
    return reduce(lambda first, second: str(template) % {"first": first, "second": second}, items)


_OR = _l("%(first)s or %(second)s")
_AND = _l("%(first)s and %(second)s")


def _key_usage_incompatible(params: Mapping[str, Any], usage_text: UsageText) -> str:
    needs = []
    if "signing_needs" in params:
        needs.append(_("signing needs %(usages)s", usages=_joined(params["signing_needs"], _OR)))
    if "encryption_needs" in params:
        needs.append(
            _("encryption needs %(usages)s", usages=_joined(params["encryption_needs"], _OR))
        )
    sentences = [
        _(
            "The certificate's key usage (%(key_usage)s) does not allow it to be used for "
            "%(usage)s: %(needs)s.",
            key_usage=", ".join(params["key_usage"]) or _("none"),
            usage=usage_text(params["usage"]),
            needs=_joined(tuple(needs), _AND),
        )
    ]
    if params["ca_only"]:
        sentences.append(
            _(
                "Certificate Sign and CRL Sign only let a certificate authority issue "
                "certificates and revocation lists; they do not cover signing or encrypting "
                "AS2 messages."
            )
        )
    sentences.append(
        _("Please send a certificate with those key usages, or choose the usage that matches it.")
    )
    return " ".join(sentences)


def _chain_not_ca(params: Mapping[str, Any], _usage_text: UsageText) -> str:
    if params["is_ca"]:
        return _(
            "The certificate '%(issuer)s' in the file issued '%(subject)s' but has a key usage "
            "without Certificate Sign, so it may not issue certificates: software that checks "
            "the chain will reject your certificate. Please send the CA certificates your CA "
            "gave you with this certificate, or the certificate alone.",
            issuer=params["issuer"],
            subject=params["subject"],
        )
    return _(
        "The certificate '%(issuer)s' in the file issued '%(subject)s' but is not a CA (basic "
        "constraints CA:TRUE), so it may not issue certificates: software that checks the chain"
        " will reject your certificate. Please send the CA certificates your CA gave you with "
        "this certificate, or the certificate alone.",
        issuer=params["issuer"],
        subject=params["subject"],
    )


def _chain(params: Mapping[str, Any], _usage_text: UsageText) -> str:
    sentences = [
        _(
            "The file also contains the CA certificates above yours, issuer first: %(path)s.",
            path=params["path"],
        )
    ]
    if "kept" in params:
        sentences.append(
            _(
                "We keep the %(kept)s intermediate CA certificate(s) with your certificate and "
                "pass them on to software that checks the chain.",
                kept=params["kept"],
            )
        )
    if "root" in params:
        sentences.append(
            _(
                "The root '%(root)s' is not kept: software that checks the chain must trust the "
                "root itself, not take it from the file.",
                root=params["root"],
            )
        )
    return " ".join(sentences)


# Findings worded in several sentences, some of them there only for some values.
COMPOSED: dict[str, Callable[[Mapping[str, Any], UsageText], str]] = {
    str(Code.KEY_USAGE_INCOMPATIBLE): _key_usage_incompatible,
    str(Code.CHAIN_NOT_CA): _chain_not_ca,
    str(Code.CHAIN): _chain,
}


def words(finding: Finding, value_text: ValueText, usage_text: UsageText) -> str:
    """FINDING's message in the page's language: VALUE_TEXT writes its values.

    A finding the catalog cannot word (a wording added to the domain and not here) is shown
    as the domain wrote it.
    """
    if not finding.params:
        return _(finding.message) if finding.message else finding.message
    code = str(finding.code)
    if code in COMPOSED:
        shown = {name: _shown(value, value_text) for name, value in finding.params.items()}
        return COMPOSED[code](shown, usage_text)
    template = TEMPLATES.get((code, frozenset(finding.params)))
    if template is None:
        return finding.message
    return str(template) % {
        name: _shown(value, value_text) for name, value in finding.params.items()
    }


def _shown(value: Any, value_text: ValueText) -> Any:
    """A param as the message shows it: lists and flags as they are, the rest as text."""
    if isinstance(value, bool | tuple):
        return value
    return value_text(value)
