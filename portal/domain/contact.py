"""Email address checks shared by forms, CLI and services (syntax only: no DNS)."""

from __future__ import annotations

from email_validator import EmailNotValidError, validate_email


def email_problem(value: str) -> str | None:
    """Return why VALUE is not a usable email address, or None when it is."""
    if not value.strip():
        return "Enter an email address."
    try:
        validate_email(value.strip(), check_deliverability=False)
    except EmailNotValidError as error:
        return f"{value.strip()[:80]} is not a valid email address: {error}"
    return None
