# Certificate Exchange Portal: gunicorn serving portal:create_app() as a non-root user.
# Its logger class redacts share-link tokens from access logs.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PORTAL_INSTANCE_PATH=/data

RUN useradd --system --create-home --home-dir /home/portal --uid 10001 portal \
    && mkdir -p /data && chown portal:portal /data

WORKDIR /src
COPY pyproject.toml README.md ./
COPY portal ./portal
COPY templates ./templates
COPY static ./static
# A regular (non-editable) install: templates and static travel inside the wheel.
RUN pip install . && rm -rf /src

USER portal
WORKDIR /home/portal
VOLUME ["/data"]
EXPOSE 8000

HEALTHCHECK --interval=30s --timeout=5s --start-period=20s --retries=3 \
    CMD python -c "import sys, urllib.request; sys.exit(0 if urllib.request.urlopen('http://127.0.0.1:8000/healthz', timeout=4).status == 200 else 1)"

# Gunicorn's settings (workers, threads, timeouts, the token-free access log) are in
# portal/gunicorn_conf.py, each changeable through PORTAL_WEB_* variables.
CMD ["sh", "-c", "portal init && exec gunicorn -c python:portal.gunicorn_conf 'portal:create_app()'"]
