"""Errors a service raises when it refuses; faces turn them into 4xx, form errors or exit 1."""

from __future__ import annotations


class ServiceError(Exception):
    """A refusal with a message a person can act on, optionally tied to a form field."""

    def __init__(self, message: str, *, field: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.field = field


class NotFoundError(ServiceError):
    """The thing asked for does not exist."""


class ConflictError(ServiceError):
    """The change would break a uniqueness rule."""
