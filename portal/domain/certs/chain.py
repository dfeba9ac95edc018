"""Several certificates in one file: which one is the sender's own, and how the others chain."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from cryptography.exceptions import InvalidSignature

from portal.domain.certs.describe import Parsed
from portal.domain.certs.model import CRYPTO_ERRORS


def end_entity(parsed: list[Parsed]) -> Parsed | None:
    """The certificate that issued none of the others (preferring one not marked CA).

    None if ambiguous. A CA that issued another certificate of the upload is therefore part
    of the chain, never judged as the sender's own certificate (names issuing each other in
    a circle fall back on all certificates, preferring those not marked CA).
    """
    if len(parsed) == 1:
        return parsed[0]
    leaves = [p for p in parsed if not any(p.issued(q) for q in parsed)] or parsed
    non_ca = [p for p in leaves if not p.info.is_ca]
    candidates = non_ca or leaves
    return candidates[0] if len(candidates) == 1 else None


def verifies(child: Parsed, issuer: Parsed) -> bool | None:
    """Whether ISSUER's key verifies CHILD's signature; None when that cannot be told.

    None covers names that do not match and algorithms beyond the library (SHA-1 under
    some OpenSSL builds, unusual keys); other checks judge such certificates.
    """
    try:
        child.cert.verify_directly_issued_by(issuer.cert)
    except InvalidSignature:
        return False
    except CRYPTO_ERRORS:
        return None
    return True


@dataclass(frozen=True)
class Chain:
    """The other certificates of an upload, sorted by how they relate to the sender's own."""

    # The leaf's issuer first, then its issuer, and so on: each named as the issuer of the
    # one before it. Whether the signatures verify is judged by the rules, not here.
    issuers: tuple[Parsed, ...] = ()
    # Sent along but above none of them: another CA, another chain, a stray certificate.
    unrelated: tuple[Parsed, ...] = ()

    @property
    def root(self) -> Parsed | None:
        """The self-signed certificate ending the issuers, when the sender included it."""
        last = self.issuers[-1] if self.issuers else None
        return last if last is not None and last.info.self_signed else None

    @property
    def intermediates(self) -> tuple[Parsed, ...]:
        """The issuers without the root: what a verifier needs besides the root it trusts."""
        return self.issuers[:-1] if self.root is not None else self.issuers

    @property
    def ordered(self) -> list[Parsed]:
        """The issuers from the leaf's up, then the unrelated certificates."""
        return [*self.issuers, *self.unrelated]


def _issuer_of(current: Parsed, candidates: Sequence[Parsed]) -> Parsed | None:
    """The candidate named as CURRENT's issuer, preferring one whose key signed it."""
    named = [p for p in candidates if p.issued(current)]
    signed = [p for p in named if verifies(current, p) is not False]
    preferred = signed or named
    return preferred[0] if preferred else None


def sort_chain(leaf: Parsed, parsed: Sequence[Parsed]) -> Chain:
    """Walk up from LEAF through the certificates that issued it, up to a self-signed one."""
    rest = [p for p in parsed if p is not leaf]
    issuers: list[Parsed] = []
    current = leaf
    while not current.info.self_signed:
        remaining = [p for p in rest if all(p is not q for q in issuers)]
        issuer = _issuer_of(current, remaining)
        if issuer is None:
            break
        issuers.append(issuer)
        current = issuer
    unrelated = [p for p in rest if all(p is not q for q in issuers)]
    return Chain(tuple(issuers), tuple(unrelated))


def order_chain(leaf: Parsed, parsed: Sequence[Parsed]) -> list[Parsed]:
    """The other certificates, issuer first, then whatever is unrelated."""
    return sort_chain(leaf, parsed).ordered
