"""Certificate Exchange Portal: rotate AS2 certificates with trading partners without outages."""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from flask import Flask
from flask.cli import FlaskGroup
from werkzeug.middleware.proxy_fix import ProxyFix

from portal.assets import asset_dir

__all__ = ["create_app", "main"]


def create_app(test_config: Mapping[str, Any] | None = None) -> Flask:
    """Build the portal: settings, extensions, blueprints and commands. Nothing else.

    No network, no schema change; the only possible write is a missing secret
    generated into the instance folder.
    """
    # Imported here, not at the top: `import portal.domain.certs` (a test, a migration,
    # the domain's own users) runs this file first and must not load the whole app.
    from portal.cli import register_commands
    from portal.clock import init_clock
    from portal.config import load_config
    from portal.extensions import csrf, db, init_secrets, limiter, login_manager
    from portal.logs import install_redaction
    from portal.settings import init_settings
    from portal.web import limit_partner_uploads, register_id_converter, register_web
    from portal.web.auth.sessions import load_user

    instance_path = (test_config or {}).get("INSTANCE_PATH") or os.environ.get(
        "PORTAL_INSTANCE_PATH"
    )
    app = Flask(
        __name__,
        instance_path=str(Path(instance_path).resolve()) if instance_path else None,
        instance_relative_config=True,
        template_folder=str(asset_dir("templates")),
        static_folder=str(asset_dir("static")),
    )
    load_config(app, test_config)
    _init_templates(app)  # before any extension creates the Jinja environment
    init_settings(app)
    init_clock(app)  # first of the request hooks: the time is taken before anything runs
    register_id_converter(app)
    # Registered before CSRFProtect's own hook, which reads the form.
    app.before_request(limit_partner_uploads)
    db.init_app(app)
    init_secrets(app)
    limiter.init_app(app)
    install_redaction(app)
    if app.config["TRUSTED_PROXIES"]:
        hops = int(app.config["TRUSTED_PROXIES"])
        app.wsgi_app = ProxyFix(  # type: ignore[method-assign]
            app.wsgi_app, x_for=hops, x_proto=hops, x_host=hops
        )
    csrf.init_app(app)
    _init_login(app, login_manager, load_user)
    register_web(app)
    register_commands(app)
    return app


# Room for every template (45 today) and the macros they import: none is ever evicted.
TEMPLATE_CACHE_SIZE = 1000


def _init_templates(app: Flask) -> None:
    """Compile each template once per process: no per-render freshness check outside debug.

    Flask creates one Jinja environment per app; its cache keeps compiled templates.
    PORTAL_TEMPLATES_AUTO_RELOAD (or debug) turns the check back on for template work.
    """
    if app.config.get("TEMPLATES_AUTO_RELOAD") is None:
        app.config["TEMPLATES_AUTO_RELOAD"] = app.debug
    app.jinja_options = {**app.jinja_options, "cache_size": TEMPLATE_CACHE_SIZE}


def _init_login(app: Flask, login_manager: Any, load_user: Any) -> None:
    login_manager.init_app(app)
    login_manager.login_view = "auth.login"
    login_manager.login_message = "Sign in to see this page."
    login_manager.login_message_category = "info"
    login_manager.session_protection = "basic"

    login_manager.user_loader(load_user)


# The `portal` program ([project.scripts]): the commands of portal.cli, on the app
# create_app builds. It lives here, in the composition root, so that the CLI face does
# not import the package that also loads the web face.
main: Callable[..., Any] = FlaskGroup(
    name="portal",
    help="Certificate Exchange Portal.",
    create_app=create_app,
    add_default_commands=False,
    add_version_option=False,
    load_dotenv=False,
    set_debug_flag=False,
)
