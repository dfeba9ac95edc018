"""Staff accounts: creation, passwords (argon2id), sign-in checks."""

from __future__ import annotations

import secrets
from collections.abc import Callable

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from portal.domain import password_policy
from portal.domain.contact import email_problem
from portal.domain.roles import Role
from portal.domain.vocab import values_of
from portal.models import User
from portal.services import audit, staff_sessions
from portal.services.actor import Actor
from portal.services.errors import ConflictError, NotFoundError, ServiceError
from portal.services.pagination import Page, like_pattern, paginate
from portal.timeutil import utcnow

MIN_PASSWORD_LENGTH = password_policy.MIN_LENGTH
# How much of a typed email an audit event keeps (a failed sign-in may type anything).
TYPED_EMAIL_KEPT = 100
# Argon2id at OWASP's recommended setting (19 MiB, 2 passes, 1 lane). The library's default
# (64 MiB, 3 passes, 4 lanes) made every sign-in raise a web worker's memory by 64 MiB, per
# concurrent sign-in, the largest part of its peak. Hashes made with other parameters are
# redone at the next successful sign-in (check_needs_rehash).
ARGON2_TIME_COST, ARGON2_MEMORY_KIB, ARGON2_LANES = 2, 19 * 1024, 1
_hasher = PasswordHasher(
    time_cost=ARGON2_TIME_COST, memory_cost=ARGON2_MEMORY_KIB, parallelism=ARGON2_LANES
)
# Verified against when the email is unknown, so both failures cost the same time. Made on
# first use: hashing costs ~0.2 s, which every `portal` command would otherwise pay at import.
_DUMMY_HASH: str | None = None


def _dummy_hash() -> str:
    global _DUMMY_HASH  # a lazily built module constant
    if _DUMMY_HASH is None:
        _DUMMY_HASH = _hasher.hash(secrets.token_urlsafe(16))
    return _DUMMY_HASH


def normalise_email(email: str) -> str:
    """Lower-case and trim an email so one address is one account."""
    return email.strip().lower()


def generate_password() -> str:
    """A strong random password (about 128 bits), easy to copy."""
    return secrets.token_urlsafe(16)


def password_problem(password: str, *, email: str | None = None) -> str | None:
    """Why PASSWORD is not acceptable (for the account EMAIL), or None."""
    return password_policy.password_problem(password, email=email)


def get_user(session: Session, user_id: int) -> User:
    """The user with USER_ID, or NotFoundError."""
    user = session.get(User, user_id)
    if user is None:
        raise NotFoundError("No such user.")
    return user


def find_by_email(session: Session, email: str) -> User | None:
    """The user with EMAIL (case-insensitive), if any."""
    return session.scalar(select(User).where(User.email == normalise_email(email)))


def find_by_login_id(session: Session, login_id: str) -> User | None:
    """Resolve a Flask-Login id 'USER_ID:SESSION_TOKEN' to an enabled user."""
    user_id, _, token = login_id.partition(":")
    if not user_id.isdigit() or not token:
        return None
    user = session.get(User, int(user_id))
    if user is None or not user.is_enabled:
        return None
    if not secrets.compare_digest(user.session_token, token):
        return None
    return user


def count_users(session: Session) -> int:
    """How many staff accounts exist."""
    return session.scalar(select(func.count()).select_from(User)) or 0


def list_users(session: Session, *, query: str = "", page: int, per_page: int) -> Page[User]:
    """Users ordered by email, optionally filtered by part of the email."""
    stmt = select(User).order_by(User.email)
    if query.strip():
        stmt = stmt.where(User.email.ilike(like_pattern(query.strip().lower()), escape="\\"))
    return paginate(session, stmt, page=page, per_page=per_page)


def create_user(
    session: Session,
    actor: Actor,
    *,
    email: str,
    role: str,
    password: str | None = None,
    timezone: str = "UTC",
) -> tuple[User, str | None]:
    """Create a user; returns it with the generated one-time password when none was given."""
    email = normalise_email(email)
    if problem := email_problem(email):
        raise ServiceError(problem, field="email")
    if role not in values_of(Role):
        raise ServiceError(f"Role must be one of {', '.join(values_of(Role))}.", field="role")
    if find_by_email(session, email) is not None:
        raise ConflictError(f"A user with email {email} already exists.", field="email")
    generated = None
    if password is None:
        password = generated = generate_password()
    elif problem := password_problem(password, email=email):
        raise ServiceError(problem, field="password")
    user = User(
        email=email,
        role=role,
        password_hash=_hasher.hash(password),
        session_token=secrets.token_urlsafe(24),
        must_change_password=generated is not None,
        timezone=timezone,
    )
    session.add(user)
    session.flush()
    audit.record(
        session,
        actor,
        "user.created",
        object_type="user",
        object_id=user.id,
        summary=f"Created user {email} with role {role}",
        details={"email": email, "role": role},
    )
    return user, generated


def authenticate(
    session: Session,
    email: str,
    password: str,
    *,
    before_hashing: Callable[[], None] | None = None,
) -> User | None:
    """The enabled user with these credentials, or None; same work whether or not EMAIL exists.

    BEFORE_HASHING runs between the look-up and the (deliberately slow) hash check: a
    web request ends its read transaction there. A rehash is computed before it is
    assigned, so the write that stores it is short.
    """
    user = find_by_email(session, email)
    password_hash = user.password_hash if user is not None else _dummy_hash()
    if before_hashing is not None:
        before_hashing()
    try:
        _hasher.verify(password_hash, password)
    except (VerificationError, InvalidHashError):
        return None
    if user is None or not user.is_enabled:
        return None
    if _hasher.check_needs_rehash(user.password_hash):
        user.password_hash = _hasher.hash(password)
    return user


def typed_email(email: str) -> str:
    """An email as typed at sign-in, fit for the audit trail: printable and truncated."""
    return "".join(char for char in email if char.isprintable())[:TYPED_EMAIL_KEPT]


def check_password(user: User, password: str) -> bool:
    """Whether PASSWORD is USER's (a re-authentication); rehashes when parameters changed."""
    try:
        _hasher.verify(user.password_hash, password)
    except (VerificationError, InvalidHashError):
        return False
    if _hasher.check_needs_rehash(user.password_hash):
        user.password_hash = _hasher.hash(password)
    return True


def record_login(session: Session, user: User, actor: Actor, *, email: str = "") -> None:
    """Note a successful sign-in (EMAIL: as typed)."""
    user.last_login_at = utcnow()
    audit.record(
        session,
        actor,
        "auth.login_succeeded",
        object_type="user",
        object_id=user.id,
        summary="Signed in",
        details={"email": typed_email(email or user.email)},
    )


def record_login_failure(
    session: Session, actor: Actor, *, email: str, user: User | None, reason: str
) -> None:
    """Note a refused sign-in as EMAIL (as typed): REASON is credentials or throttled."""
    audit.record(
        session,
        actor,
        "auth.login_failed",
        object_type="user",
        object_id=user.id if user is not None else "",
        summary=f"Sign-in refused ({reason})",
        details={"email": typed_email(email), "reason": reason},
    )


def record_reauthentication(
    session: Session, actor: Actor, *, succeeded: bool, reason: str
) -> None:
    """Note a password confirmation for a sensitive page, accepted or refused (REASON)."""
    audit.record(
        session,
        actor,
        "auth.reauth_succeeded" if succeeded else "auth.reauth_failed",
        object_type="user",
        object_id=actor.user_id,
        summary="Confirmed the password" if succeeded else f"Confirmation refused ({reason})",
        details={} if succeeded else {"reason": reason},
    )


def record_session_end(session: Session, actor: Actor, *, reason: str) -> None:
    """Note that the server ended a session on its own: REASON idle or expired."""
    audit.record(
        session,
        actor,
        "auth.session_ended",
        object_type="user",
        object_id=actor.user_id,
        summary=f"Session ended ({reason})",
        details={"reason": reason},
    )


def record_access_denied(session: Session, actor: Actor, *, path: str, permission: str) -> None:
    """Note a signed-in user refused a page their role does not allow (403)."""
    audit.record(
        session,
        actor,
        "auth.access_denied",
        object_type="user",
        object_id=actor.user_id,
        summary=f"Refused {path[:200]}",
        details={"path": path[:200], "permission": permission},
    )


def record_logout(session: Session, actor: Actor) -> None:
    """Note a sign-out."""
    audit.record(
        session,
        actor,
        "user.logout",
        object_type="user",
        object_id=actor.user_id,
        summary="Signed out",
    )


def change_password(session: Session, actor: Actor, user: User, *, current: str, new: str) -> None:
    """Replace USER's password after checking the current one; other sessions are signed out."""
    try:
        _hasher.verify(user.password_hash, current)
    except (VerificationError, InvalidHashError):
        raise ServiceError("The current password is wrong.", field="current_password") from None
    if problem := password_problem(new, email=user.email):
        raise ServiceError(problem, field="new_password")
    if new == current:
        raise ServiceError(
            "Choose a password different from the current one.", field="new_password"
        )
    user.password_hash = _hasher.hash(new)
    user.must_change_password = False
    user.session_token = secrets.token_urlsafe(24)
    audit.record(
        session,
        actor,
        "user.password_changed",
        object_type="user",
        object_id=user.id,
        summary="Changed password",
    )


def update_user(
    session: Session, actor: Actor, user: User, *, role: str, is_enabled: bool, timezone: str
) -> None:
    """Change a user's role, status or time zone; disabling signs the user out everywhere."""
    if role not in values_of(Role):
        raise ServiceError(f"Role must be one of {', '.join(values_of(Role))}.", field="role")
    if user.id == actor.user_id and (role != "admin" or not is_enabled):
        raise ServiceError(
            "You cannot remove your own admin role or disable yourself.", field="role"
        )
    changes: dict[str, list[str] | list[bool]] = {}  # field: [before, after]
    if role != user.role:
        changes["role"] = [user.role, role]
        user.role = role
    if is_enabled != user.is_enabled:
        changes["is_enabled"] = [user.is_enabled, is_enabled]
        user.is_enabled = is_enabled
        if not is_enabled:
            user.session_token = secrets.token_urlsafe(24)
            staff_sessions.end_other_sessions(
                session, user, keep=None, now=utcnow(), reason=staff_sessions.DISABLED
            )
    if timezone != user.timezone:
        changes["timezone"] = [user.timezone, timezone]
        user.timezone = timezone
    if changes:
        audit.record(
            session,
            actor,
            "user.updated",
            object_type="user",
            object_id=user.id,
            summary=f"Updated user {user.email}: {', '.join(sorted(changes))}",
            details=changes,
        )


def reset_password(session: Session, actor: Actor, user: User) -> str:
    """Give USER a new one-time password (returned once) and sign them out everywhere."""
    password = generate_password()
    user.password_hash = _hasher.hash(password)
    user.must_change_password = True
    user.session_token = secrets.token_urlsafe(24)
    staff_sessions.end_other_sessions(
        session, user, keep=None, now=utcnow(), reason=staff_sessions.CREDENTIALS_RESET
    )
    audit.record(
        session,
        actor,
        "user.password_reset",
        object_type="user",
        object_id=user.id,
        summary=f"Reset the password of {user.email}",
    )
    return password


def bootstrap_admin(session: Session, email: str) -> str | None:
    """On an empty database, create the first admin and return its one-time password."""
    if count_users(session) > 0:
        return None
    _user, password = create_user(session, Actor("first start"), email=email, role="admin")
    return password
