"""Two-factor sign-in: TOTP enrolment, the second step of a sign-in, recovery codes, reset.

The TOTP secret is stored encrypted under the key ring (like private keys and webhook
secrets), bound to its user by the associated data; recovery codes are stored as salted
SHA-256 (portal.domain.totp says why a fast hash is enough for them). Every change and
every refused code is audited; no code or secret ever reaches the audit trail.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Collection
from datetime import datetime
from typing import Literal

from sqlalchemy import delete, func, select
from sqlalchemy.orm import Session

from portal.domain import totp
from portal.domain.keys import KeyRing, KeyRingError
from portal.models import RecoveryCode, User
from portal.services import audit
from portal.services.actor import Actor
from portal.services.errors import ServiceError

ISSUER = "Certificate Exchange Portal"
WRONG_CODE = "That code is not right. Enter the current code from your app, or a recovery code."
Method = Literal["totp", "recovery"]


def _aad(user_id: int) -> bytes:
    return f"user {user_id} totp secret".encode()


def _pending_aad(user_id: int) -> bytes:
    return f"user {user_id} totp secret being enrolled".encode()


def is_enabled(user: User) -> bool:
    """Whether USER signs in with a second factor."""
    return user.two_factor_enabled_at is not None and user.totp_secret_encrypted is not None


def is_required(user: User, required_roles: Collection[str]) -> bool:
    """Whether USER's role must use a second factor (PORTAL_TWO_FACTOR_REQUIRED_ROLES)."""
    return user.role in required_roles


def must_enrol(user: User, required_roles: Collection[str]) -> bool:
    """Whether USER must enrol before doing anything else."""
    return is_required(user, required_roles) and not is_enabled(user)


def seal_pending_secret(keyring: KeyRing, user_id: int, secret: str) -> str:
    """A secret being enrolled, encrypted for the session cookie (which is signed, not secret)."""
    blob = keyring.encrypt(secret.encode("ascii"), associated_data=_pending_aad(user_id))
    return base64.urlsafe_b64encode(blob).decode("ascii")


def open_pending_secret(keyring: KeyRing, user_id: int, sealed: object) -> str | None:
    """The secret sealed by seal_pending_secret for USER_ID, or None if it does not open."""
    if not isinstance(sealed, str):
        return None
    try:
        blob = base64.urlsafe_b64decode(sealed.encode("ascii"))
        return keyring.decrypt(blob, associated_data=_pending_aad(user_id)).decode("ascii")
    except (binascii.Error, ValueError, UnicodeError, KeyRingError):
        return None


def provisioning(user: User, secret: str) -> tuple[str, str]:
    """The otpauth:// address for SECRET and its QR code as inline SVG."""
    uri = totp.provisioning_uri(secret, account=user.email, issuer=ISSUER)
    return uri, totp.qr_svg(uri, title="QR code for your authenticator app")


def _secret_of(keyring: KeyRing, user: User) -> str:
    if user.totp_secret_encrypted is None:
        raise ServiceError("Two-factor sign-in is not enabled for this user.")
    try:
        return keyring.decrypt(user.totp_secret_encrypted, associated_data=_aad(user.id)).decode()
    except KeyRingError as error:
        raise ServiceError(f"The two-factor secret cannot be decrypted: {error}") from None


def _new_recovery_codes(session: Session, user: User) -> list[str]:
    session.execute(delete(RecoveryCode).where(RecoveryCode.user_id == user.id))
    codes = totp.new_recovery_codes()
    session.add_all(
        RecoveryCode(user_id=user.id, code_hash=totp.hash_recovery_code(code)) for code in codes
    )
    return codes


def enable(
    session: Session,
    keyring: KeyRing,
    actor: Actor,
    user: User,
    *,
    secret: str,
    code: str,
    now: datetime,
) -> list[str]:
    """Turn on two-factor sign-in once CODE proves the app holds SECRET; the recovery codes."""
    if is_enabled(user):
        raise ServiceError("Two-factor sign-in is already enabled.")
    step = totp.matching_step(secret, code, now=now, after_step=None)
    if step is None:
        raise ServiceError(
            "That code is not right. Enter the current code from your app.", field="code"
        )
    user.totp_secret_encrypted = keyring.encrypt(secret.encode(), associated_data=_aad(user.id))
    user.two_factor_enabled_at = now
    user.totp_last_used_step = step
    codes = _new_recovery_codes(session, user)
    audit.record(
        session,
        actor,
        "user.two_factor_enabled",
        object_type="user",
        object_id=user.id,
        summary=f"Enabled two-factor sign-in for {user.email}",
        details={"recovery_codes": len(codes)},
    )
    return codes


def _use_recovery_code(session: Session, user: User, code: str, now: datetime) -> bool:
    unused = session.scalars(
        select(RecoveryCode).where(RecoveryCode.user_id == user.id, RecoveryCode.used_at.is_(None))
    )
    for stored in unused:
        if totp.recovery_code_matches(stored.code_hash, code):
            stored.used_at = now
            return True
    return False


def check_code(
    session: Session, keyring: KeyRing, actor: Actor, user: User, code: str, *, now: datetime
) -> Method | None:
    """Accept a TOTP code (once) or an unused recovery code (consumed) of USER; audited."""
    step = totp.matching_step(
        _secret_of(keyring, user), code, now=now, after_step=user.totp_last_used_step
    )
    if step is not None:
        user.totp_last_used_step = step
        return "totp"
    if _use_recovery_code(session, user, code, now):
        left = remaining_recovery_codes(session, user)
        audit.record(
            session,
            actor,
            "user.recovery_code_used",
            object_type="user",
            object_id=user.id,
            summary=f"Used a recovery code ({left} left)",
            details={"remaining": left},
        )
        return "recovery"
    audit.record(
        session,
        actor,
        "user.two_factor_failed",
        object_type="user",
        object_id=user.id,
        summary="Entered a wrong two-factor code",
    )
    return None


def remaining_recovery_codes(session: Session, user: User) -> int:
    """How many recovery codes of USER are still unused."""
    session.flush()
    count = session.scalar(
        select(func.count())
        .select_from(RecoveryCode)
        .where(RecoveryCode.user_id == user.id, RecoveryCode.used_at.is_(None))
    )
    return int(count or 0)


def _turn_off(session: Session, user: User) -> bool:
    was_on = is_enabled(user)
    user.totp_secret_encrypted = None
    user.two_factor_enabled_at = None
    user.totp_last_used_step = None
    session.execute(delete(RecoveryCode).where(RecoveryCode.user_id == user.id))
    return was_on


def disable(
    session: Session,
    keyring: KeyRing,
    actor: Actor,
    user: User,
    *,
    code: str,
    now: datetime,
    required_roles: Collection[str],
) -> None:
    """Turn off one's own two-factor sign-in, proven by a current or recovery code."""
    if is_required(user, required_roles):
        raise ServiceError("Your role must use two-factor sign-in; it cannot be turned off.")
    if check_code(session, keyring, actor, user, code, now=now) is None:
        raise ServiceError(WRONG_CODE, field="code")
    _turn_off(session, user)
    audit.record(
        session,
        actor,
        "user.two_factor_disabled",
        object_type="user",
        object_id=user.id,
        summary=f"Disabled two-factor sign-in for {user.email}",
    )


def regenerate_recovery_codes(
    session: Session,
    keyring: KeyRing,
    actor: Actor,
    user: User,
    *,
    code: str,
    now: datetime,
) -> list[str]:
    """Replace USER's recovery codes, proven by a current code; the new codes (shown once).

    For a user who used some or fears the list was seen: every earlier code stops working.
    """
    if not is_enabled(user):
        raise ServiceError("Two-factor sign-in is not enabled for this user.")
    if check_code(session, keyring, actor, user, code, now=now) is None:
        raise ServiceError(WRONG_CODE, field="code")
    codes = _new_recovery_codes(session, user)
    audit.record(
        session,
        actor,
        "user.recovery_codes_regenerated",
        object_type="user",
        object_id=user.id,
        summary=f"Made new recovery codes for {user.email}; the earlier ones stop working",
        details={"recovery_codes": len(codes)},
    )
    return codes


def reset(session: Session, actor: Actor, user: User) -> bool:
    """An administrator's reset: the secret and recovery codes go; whether it was enabled."""
    was_on = _turn_off(session, user)
    audit.record(
        session,
        actor,
        "user.two_factor_reset",
        object_type="user",
        object_id=user.id,
        summary=f"Reset two-factor sign-in of {user.email}",
        details={"was_enabled": was_on},
    )
    return was_on


def rotate_secrets(session: Session, keyring: KeyRing) -> tuple[int, int]:
    """Re-encrypt every TOTP secret under the newest key: (re-encrypted, total)."""
    rotated = total = 0
    for user in session.scalars(select(User).where(User.totp_secret_encrypted.is_not(None))):
        total += 1
        blob = user.totp_secret_encrypted
        if blob is not None and keyring.needs_rotation(blob):
            secret = _secret_of(keyring, user)
            user.totp_secret_encrypted = keyring.encrypt(
                secret.encode(), associated_data=_aad(user.id)
            )
            rotated += 1
    session.flush()
    return rotated, total
