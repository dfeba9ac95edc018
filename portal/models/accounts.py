"""Staff accounts, their sign-ins, and API tokens."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import (
    JSON,
    BigInteger,
    CheckConstraint,
    ForeignKey,
    Index,
    LargeBinary,
    String,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from portal.domain.roles import Role
from portal.models.base import Base, BigIntId, UTCDateTime, one_of
from portal.timeutil import utcnow


class User(Base):
    """A staff account.

    It answers what Flask-Login asks of a user (is_active, is_authenticated,
    is_anonymous, get_id) itself: the models import nothing from Flask.
    """

    __tablename__ = "users"
    __table_args__ = (CheckConstraint(one_of("role", Role), name="role"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    email: Mapped[str] = mapped_column(String(254), unique=True)
    password_hash: Mapped[str] = mapped_column(String(255))
    role: Mapped[str] = mapped_column(String(16))
    is_enabled: Mapped[bool] = mapped_column(default=True)
    must_change_password: Mapped[bool] = mapped_column(default=False)
    # Part of the Flask-Login id: rotating it signs out every session of the user.
    session_token: Mapped[str] = mapped_column(String(64))
    timezone: Mapped[str] = mapped_column(String(64), default="UTC")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    last_login_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # Two-factor sign-in (portal.services.two_factor): the TOTP secret encrypted under the
    # key ring, when it was enabled (None: off), and the last time step a code was used
    # for (a code works once).
    totp_secret_encrypted: Mapped[bytes | None] = mapped_column(LargeBinary)
    two_factor_enabled_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    totp_last_used_step: Mapped[int | None] = mapped_column(BigInteger)

    @property
    def is_active(self) -> bool:
        """Disabled users cannot sign in and lose their sessions."""
        return self.is_enabled

    @property
    def is_authenticated(self) -> bool:
        """A loaded user is a signed-in one while enabled (anonymous visitors are not Users)."""
        return self.is_active

    @property
    def is_anonymous(self) -> bool:
        """Never: anonymous visitors are Flask-Login's own AnonymousUserMixin."""
        return False

    def get_id(self) -> str:
        """The id Flask-Login keeps in the session; includes the rotating session token."""
        return f"{self.id}:{self.session_token}"

    def __repr__(self) -> str:
        return f"<User {self.id} {self.email} {self.role}>"


class StaffSession(Base):
    """One sign-in of a staff user: the server's word on whether a session cookie still works.

    The cookie carries a random id; only its SHA-256 is stored. Signing out, or the
    lifetime passing, ends the session here, so a copied cookie dies with it.
    """

    __tablename__ = "staff_sessions"
    __table_args__ = (UniqueConstraint("token_hash"), Index(None, "user_id", "ended_at"))

    id: Mapped[int] = mapped_column(BigIntId, primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    token_hash: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime)
    ended_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # Why it ended: signed_out, password_changed, disabled, ...
    ended_reason: Mapped[str | None] = mapped_column(String(32))
    client_address: Mapped[str | None] = mapped_column(String(64))
    user_agent: Mapped[str | None] = mapped_column(String(300))
    # The last request seen (written at most once a minute; None: created_at): idle timeout.
    last_seen_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # When the password was last typed in this session (None: created_at): re-authentication.
    authenticated_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class RecoveryCode(Base):
    """A one-time code that stands in for a TOTP code; shown once, stored as salted SHA-256."""

    __tablename__ = "recovery_codes"

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    # 'salt-hex$sha256-hex' (portal.domain.totp.hash_recovery_code)
    code_hash: Mapped[str] = mapped_column(String(100))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    used_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class ApiToken(Base):
    """A named credential for programs calling the API, with the scopes it grants.

    The secret is shown once when the token is made; only its SHA-256 is stored.
    """

    __tablename__ = "api_tokens"
    __table_args__ = (UniqueConstraint("name"), UniqueConstraint("token_hash"))

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(64))
    # Scope values (portal.domain.scopes), sorted; the service accepts only known ones.
    scopes: Mapped[list[str]] = mapped_column(JSON)
    token_hash: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    created_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    last_used_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    created_by: Mapped[User | None] = relationship()
