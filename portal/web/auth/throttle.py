"""Sign-in throttling: failed password checks counted per account and per client address.

The counters live in the limiter's storage (PORTAL_RATELIMIT_STORAGE_URI), so every web
process shares them through Redis. Only failures count: an office behind one address
signing in all morning is never slowed, while a guesser is refused after the limit, even
when a later guess is right. The account's counter is keyed by a hash of the email as
normalised, so an unknown email is throttled exactly like a known one (no answer tells
them apart) and no address is written to the storage in clear.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import UTC, datetime

from flask import request
from limits import RateLimitItem, parse

from portal.extensions import limiter
from portal.services.users import normalise_email
from portal.settings import settings

ACCOUNT_SCOPE = "login-account"
ADDRESS_SCOPE = "login-address"
# A throttled sign-in is audited once per budget and window, not once per request: a flood
# must not turn into a flood of audit rows.
_AUDIT_ONCE = parse("1 per 15 minutes")


@dataclass(frozen=True)
class Budget:
    """One rate limit and the key it counts under."""

    item: RateLimitItem
    key: tuple[str, str]


def client_address() -> str:
    """The client's address as the app sees it (after PORTAL_TRUSTED_PROXIES)."""
    return request.remote_addr or "unknown"


def account_key(email: str) -> str:
    """The account's counter key: a digest of the normalised email (never the email)."""
    normalised = normalise_email(email)[:254]
    return hashlib.sha256(normalised.encode("utf-8")).hexdigest()[:40]


def budgets(email: str) -> list[Budget]:
    """The per-address and per-account budgets a sign-in as EMAIL spends from."""
    config = settings()
    return [
        Budget(parse(config.ratelimit_login_address), (ADDRESS_SCOPE, client_address())),
        Budget(parse(config.ratelimit_login_account), (ACCOUNT_SCOPE, account_key(email))),
    ]


def refused_until(email: str) -> datetime | None:
    """When sign-in as EMAIL from this address may be tried again; None: it may be now."""
    if not limiter.enabled:
        return None
    strategy = limiter.limiter
    for budget in budgets(email):
        if not strategy.test(budget.item, *budget.key):
            reset, _remaining = strategy.get_window_stats(budget.item, *budget.key)
            return datetime.fromtimestamp(reset, UTC)
    return None


def first_refusal(email: str) -> bool:
    """Whether this is the first refusal of its window (the one to audit)."""
    if not limiter.enabled:
        return True
    strategy = limiter.limiter
    return any(
        not strategy.test(budget.item, *budget.key)
        and strategy.hit(_AUDIT_ONCE, "login-throttled", *budget.key)
        for budget in budgets(email)
    )


def count_failure(email: str) -> None:
    """Spend one failure from both budgets."""
    if not limiter.enabled:
        return
    strategy = limiter.limiter
    for budget in budgets(email):
        strategy.hit(budget.item, *budget.key)


def forget_failures(email: str) -> None:
    """A right password clears the account's failures (the address's stay counted)."""
    if not limiter.enabled:
        return
    strategy = limiter.limiter
    for budget in budgets(email):
        if budget.key[0] == ACCOUNT_SCOPE:
            strategy.clear(budget.item, *budget.key)
