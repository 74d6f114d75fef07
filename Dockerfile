# One image for all of Dripline: the four services and the migrations.
#
#   docker build -t dripline .
#   docker run --rm -e DRIPLINE_DATABASE_URL=... dripline migrate
#   docker run -e DRIPLINE_DATABASE_URL=... -e DRIPLINE_KAFKA_BOOTSTRAP=... dripline sender
#
# The entrypoint is `dripline`; the command names the service (api, scheduler, sender, stats)
# or `migrate`. The project installs with pip from pyproject.toml, as the Makefile does (there is
# no lock file; the dependencies' ranges are in pyproject.toml). deploy/docker-compose.yml and
# deploy/k8s/ run it; docs/deploy.md explains how. Checked by tests/deploy (hadolint and more).
#
# The base image is pinned to a Python minor version and a Debian release. For reproducible
# production builds, pin its digest too: FROM python:3.11-slim-bookworm@sha256:<digest>.

FROM python:3.11-slim-bookworm AS build

ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PYTHONDONTWRITEBYTECODE=1

WORKDIR /src
RUN python -m venv /opt/dripline

# The dependencies first, read from pyproject.toml alone, so that a change to the code reuses
# this (slow) layer.
COPY pyproject.toml README.md ./
RUN python -c "import tomllib; print('\n'.join(tomllib.load(open('pyproject.toml', 'rb'))['project']['dependencies']))" > requirements.txt \
    && /opt/dripline/bin/pip install --requirement requirements.txt

COPY dripline ./dripline
COPY shared ./shared
COPY services ./services
RUN /opt/dripline/bin/pip install --no-deps . \
    && /opt/dripline/bin/dripline --help > /dev/null


FROM python:3.11-slim-bookworm

LABEL org.opencontainers.image.title="dripline" \
      org.opencontainers.image.description="Dripline campaign engine: api, scheduler, sender, stats"

RUN groupadd --system --gid 10001 dripline \
    && useradd --system --uid 10001 --gid dripline --home-dir /home/dripline --create-home \
       --shell /usr/sbin/nologin dripline

COPY --from=build /opt/dripline /opt/dripline

# Listen on every interface inside the container (the settings default to 127.0.0.1).
ENV PATH=/opt/dripline/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    DRIPLINE_HTTP_HOST=0.0.0.0 \
    DRIPLINE_STATE_DIR=/home/dripline/.dripline

WORKDIR /home/dripline
# Numeric, so that Kubernetes can verify runAsNonRoot.
USER 10001:10001

# api, scheduler, sender, stats (DRIPLINE_*_PORT): /health, /health/live, /metrics.
EXPOSE 8000 8101 8102 8103

ENTRYPOINT ["dripline"]
CMD ["api"]
