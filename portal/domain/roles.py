"""Staff roles and what each may do. Plain Python: used by views, CLI and tests alike."""

from __future__ import annotations

from enum import StrEnum


class Role(StrEnum):
    """A staff member's role."""

    ADMIN = "admin"
    APPROVER = "approver"
    OPERATOR = "operator"
    VIEWER = "viewer"


class Permission(StrEnum):
    """Something a staff page or command needs."""

    VIEW = "view"
    MANAGE_PARTNERS = "manage_partners"
    APPROVE = "approve"
    MANAGE_USERS = "manage_users"
    EXPORT_KEYS = "export_keys"
    MANAGE_OUTBOX = "manage_outbox"  # see outgoing emails, retry failed ones
    MANAGE_TOKENS = "manage_tokens"  # create, list and revoke API tokens
    MANAGE_WEBHOOKS = "manage_webhooks"  # register and remove webhooks, read their delivery logs


_GRANTS: dict[Role, frozenset[Permission]] = {
    Role.VIEWER: frozenset({Permission.VIEW}),
    Role.OPERATOR: frozenset({Permission.VIEW, Permission.MANAGE_PARTNERS, Permission.EXPORT_KEYS}),
    Role.APPROVER: frozenset({Permission.VIEW, Permission.APPROVE}),
    Role.ADMIN: frozenset(Permission),
}


def role_allows(role: str, permission: Permission) -> bool:
    """Tell whether ROLE grants PERMISSION; unknown roles grant nothing."""
    try:
        return permission in _GRANTS[Role(role)]
    except ValueError:
        return False


def parse_roles(value: object) -> frozenset[str]:
    """Role names from "admin,approver" text or a list; ValueError names an unknown one."""
    if value is None:
        return frozenset()
    items = value.split(",") if isinstance(value, str) else value
    if not isinstance(items, list | tuple | set | frozenset):
        raise ValueError("expected role names separated by commas")
    names = frozenset(str(item).strip().lower() for item in items if str(item).strip())
    unknown = sorted(names - {role.value for role in Role})
    if unknown:
        raise ValueError(f"unknown role {unknown[0]!r}; roles are {', '.join(Role)}")
    return names
