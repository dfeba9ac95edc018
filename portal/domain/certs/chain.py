"""Several certificates in one file: which one is the sender's own, and how the others chain."""

from __future__ import annotations

from portal.domain.certs.describe import Parsed


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


def order_chain(leaf: Parsed, parsed: list[Parsed]) -> list[Parsed]:
    """The other certificates, issuer first, then whatever is unrelated."""
    rest = [p for p in parsed if p is not leaf]
    ordered: list[Parsed] = []
    current = leaf
    while True:
        issuer = next((p for p in rest if p.issued(current) and p not in ordered), None)
        if issuer is None:
            break
        ordered.append(issuer)
        current = issuer
    return ordered + [p for p in rest if p not in ordered]
