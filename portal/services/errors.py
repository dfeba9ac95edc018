"""Errors a service raises when it refuses; faces turn them into 4xx, form errors or exit 1.

Each class carries the HTTP status a web face answers with (`http_status`), so no face has
to guess it from the message. The CLI ignores it: every refusal there is exit 1.
"""

from __future__ import annotations


class ServiceError(Exception):
    """A refusal with a message a person can act on, optionally tied to a form field."""

    http_status: int = 422

    def __init__(self, message: str, *, field: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.field = field


class BadRequestError(ServiceError):
    """The request itself cannot be read: a malformed time, an unknown choice."""

    http_status = 400


class NotFoundError(ServiceError):
    """The thing asked for does not exist."""

    http_status = 404


class ConflictError(ServiceError):
    """The change would break a uniqueness rule."""

    http_status = 409


class LinkClosedError(ServiceError):
    """The link cannot take uploads; raised as such when it was issued for downloading only."""

    http_status = 403


class LinkGoneError(LinkClosedError):
    """The link cannot take uploads: it has expired or was revoked."""

    http_status = 410


class LinkUsedUpError(LinkClosedError):
    """The link cannot take uploads: every upload it allowed has been used."""

    http_status = 409


class NotAuthenticatedError(ServiceError):
    """No credential, or one that is unknown or no longer works (an API token)."""

    http_status = 401


class ForbiddenError(ServiceError):
    """The credential works but does not allow this (an API token without the scope)."""

    http_status = 403
