"""Who is acting, as the audit trail records it."""

from __future__ import annotations

from dataclasses import dataclass

from portal.models import User


@dataclass(frozen=True)
class Actor:
    """A staff user, the command line or the system, with where the request came from."""

    label: str
    user_id: int | None = None
    client_address: str | None = None
    user_agent: str | None = None

    @classmethod
    def for_user(
        cls, user: User, client_address: str | None = None, user_agent: str | None = None
    ) -> Actor:
        """An actor for a signed-in staff user."""
        return cls(user.email, user.id, client_address, (user_agent or "")[:400] or None)

    @classmethod
    def api_token(
        cls, name: str, client_address: str | None = None, user_agent: str | None = None
    ) -> Actor:
        """An actor for a program calling the API with the token NAME."""
        return cls(f"API token {name}", None, client_address, (user_agent or "")[:400] or None)

    @classmethod
    def command_line(cls, user: User | None = None) -> Actor:
        """An actor for a `portal` command, on behalf of USER when given."""
        if user is None:
            return cls("command line")
        return cls(f"{user.email} (command line)", user.id)
