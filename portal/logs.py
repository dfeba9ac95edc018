"""Keep share-link tokens out of every log: application, dev server and gunicorn access logs.

Tokens are found however the request spelled them (portal.domain.tokens.redact_tokens), and
control characters in a logged value are escaped, so each event stays one line.

API tokens travel in the Authorization header, which no default log format shows; the
gunicorn access log's header fields drop it anyway, should a custom format name it.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from flask import Flask
from gunicorn.glogging import Logger as _GunicornLogger

from portal.domain.tokens import escape_controls, redact_tokens

# Gunicorn's access-log fields for request headers that carry credentials.
SECRET_HEADER_ATOMS = frozenset({"{authorization}i", "{cookie}i"})
REDACTED_LOGGERS = ("werkzeug", "waitress", "gunicorn.access", "gunicorn.error", "portal")


def _redact(value: Any) -> Any:
    return escape_controls(redact_tokens(value)) if isinstance(value, str) else value


class RedactTokensFilter(logging.Filter):
    """Rewrites a record's message and arguments with link tokens replaced."""

    def filter(self, record: logging.LogRecord) -> bool:
        """Redact in place; never drops a record."""
        try:
            message = record.getMessage()
        except (TypeError, ValueError):
            return True  # a malformed record is the logging module's to report
        # Format first, then redact: a token can be in the arguments, the template or both.
        # Control characters are escaped so that a logged value cannot forge a second line.
        cleaned = escape_controls(redact_tokens(message))
        if cleaned != message:
            record.msg, record.args = cleaned, None
        return True


_FILTER = RedactTokensFilter()


def _redacting_factory(
    previous: Callable[..., logging.LogRecord],
) -> Callable[..., logging.LogRecord]:
    """A record factory that redacts each record as it is made, under any logger name.

    A logger's filter never sees records of its children (portal.jobs under portal), so
    the filters alone would miss `logging.getLogger(__name__)` in every module.
    """

    def make(*args: Any, **kwargs: Any) -> logging.LogRecord:
        record = previous(*args, **kwargs)
        _FILTER.filter(record)
        return record

    make.redacts = True  # type: ignore[attr-defined]
    return make


def install_redaction(app: Flask) -> None:
    """Redact every record made in this process, and filter the loggers that see request
    paths too (records made elsewhere, e.g. logging.makeLogRecord); idempotent."""
    factory = logging.getLogRecordFactory()
    if not getattr(factory, "redacts", False):
        logging.setLogRecordFactory(_redacting_factory(factory))
    for name in (*REDACTED_LOGGERS, app.logger.name):
        logger = logging.getLogger(name)
        if _FILTER not in logger.filters:
            logger.addFilter(_FILTER)


class GunicornLogger(_GunicornLogger):  # type: ignore[misc]
    """Gunicorn's logger with tokens redacted from every access-log field and error line."""

    def setup(self, cfg: Any) -> None:
        """Gunicorn's set-up, then the filter on its error log (bad request lines land there).

        The master process logs before any app is loaded, so create_app's filter is not enough.
        """
        super().setup(cfg)
        if _FILTER not in self.error_log.filters:
            self.error_log.addFilter(_FILTER)

    def atoms(self, resp: Any, req: Any, environ: Any, request_time: Any) -> dict[str, Any]:
        """Gunicorn's access-log fields, redacted."""
        atoms = super().atoms(resp, req, environ, request_time)
        return {
            key: "[redacted]" if key in SECRET_HEADER_ATOMS else _redact(value)
            for key, value in atoms.items()
        }
