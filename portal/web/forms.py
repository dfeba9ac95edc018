"""Helpers shared by the forms of every blueprint."""

from __future__ import annotations

from flask_wtf import FlaskForm

from portal.services.errors import ServiceError


def attach_error(form: FlaskForm, error: ServiceError) -> None:
    """Show a service's refusal on the field it names, or above the form."""
    field = getattr(form, error.field, None) if error.field else None
    if field is not None:
        field.errors = [*field.errors, error.message]
    else:
        form.form_errors.append(error.message)


def page_arg(value: str | None) -> int:
    """A page number from a query string; anything odd means page 1."""
    if value and value.isdigit():
        return max(1, min(int(value), 1_000_000))
    return 1
