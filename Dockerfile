# syntax=docker/dockerfile:1
# Pingyi's image: a build stage that installs the service and its dependencies into a
# virtual environment, and a slim runtime stage with that environment, the code, the
# migrations and the Casbin policy, running as an unprivileged user. No compiler is
# needed (every dependency ships a manylinux wheel) and no build tool is left in the
# final image (pip, setuptools and wheel are removed). docs/deploy.md builds and runs it.
ARG PYTHON_IMAGE=python:3.11-slim-bookworm

FROM ${PYTHON_IMAGE} AS build
ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PYTHONDONTWRITEBYTECODE=1
RUN python -m venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH
WORKDIR /app
COPY pyproject.toml README.md ./
COPY service ./service
COPY migrations ./migrations
COPY policies ./policies
# Editable: the code finds its migrations and policy beside it (service/migrate.py,
# service/authz/enforcer.py), so /app is copied whole to the same path below.
# pgserver (the embedded PostgreSQL for demos and tests) is left out: the image always
# talks to an external PostgreSQL (PINGYI_APP_DATABASE_URL / PINGYI_DATABASE_URL).
# The `tracing` extra: OpenTelemetry, off unless PINGYI_TRACING is set.
RUN pip install --no-compile -e ".[tracing]" \
 && pip uninstall -y pgserver \
 && python -m compileall -q /app/service /app/migrations /opt/venv/lib \
 && pip uninstall -y pip setuptools wheel

FROM ${PYTHON_IMAGE} AS runtime
# The python base image's own pip and setuptools: not needed at run time.
RUN python -m pip uninstall -y pip setuptools wheel \
 && groupadd --system --gid 10001 pingyi \
 && useradd --system --uid 10001 --gid pingyi --no-create-home \
      --home-dir /nonexistent --shell /usr/sbin/nologin pingyi \
 && mkdir -p /var/lib/pingyi \
 && chown pingyi:pingyi /var/lib/pingyi
COPY --from=build /opt/venv /opt/venv
COPY --from=build /app /app
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PINGYI_HOST=0.0.0.0 \
    PINGYI_PORT=8000 \
    PINGYI_DATA_DIR=/var/lib/pingyi
WORKDIR /app
# Numeric, so Kubernetes' runAsNonRoot can check it without reading /etc/passwd.
USER 10001:10001
EXPOSE 8000
HEALTHCHECK --interval=10s --timeout=3s --start-period=20s \
  CMD ["python", "-c", "import urllib.request as u; u.urlopen('http://127.0.0.1:8000/healthz', timeout=2)"]
ENTRYPOINT ["pingyi"]
CMD ["serve"]
