# The openIMIS to DHIS2 mediator under gunicorn, as a non-root user. Settings come from MEDIATOR_* environment
# variables (README, "Settings"); its state (heartbeat lock, console config, SQLite journal if no PostgreSQL) lives
# in the volume /var/lib/mediator. docker-compose.yml runs it with OpenHIM and PostgreSQL (deploy/README.md).
#
# The build stage makes wheels of the mediator and of its dependencies; the final stage installs them and nothing
# else: no sources, tests, benchmarks or fake DHIS2.

FROM python:3.11.15-slim-bookworm AS build

ENV PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_NO_CACHE_DIR=1 \
    PYTHONDONTWRITEBYTECODE=1

WORKDIR /src
COPY pyproject.toml README.md ./
COPY mediator ./mediator
# pyproject.toml also declares the fake DHIS2 that the tests use (package and `fake-dhis2` script): the fake is not
# in the build context, and its script is taken out of this copy of pyproject.toml so that the wheel has neither.
RUN sed -i '/^fake-dhis2[[:space:]]*=/d' pyproject.toml \
    && pip wheel --wheel-dir /wheels . \
    && python -c "import glob, sys, zipfile; (wheel,) = glob.glob('/wheels/openimis_dhis2_mediator-*.whl'); \
z = zipfile.ZipFile(wheel); names = z.namelist(); \
scripts = ''.join(z.read(n).decode() for n in names if n.endswith('.dist-info/entry_points.txt')); \
stray = [n for n in names if n.split('/')[0] in ('fake_dhis2', 'tests', 'bench')] + ['fake-dhis2'] * ('fake' in scripts); \
sys.exit(f'{wheel} holds more than the mediator: {stray}' if stray else 0)"

FROM python:3.11.15-slim-bookworm

LABEL org.opencontainers.image.title="openimis-dhis2-mediator" \
      org.opencontainers.image.description="OpenHIM mediator that carries openIMIS FHIR R4 data into DHIS2" \
      org.opencontainers.image.licenses="MPL-2.0" \
      org.opencontainers.image.base.name="docker.io/library/python:3.11.15-slim-bookworm"

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    MEDIATOR_CONFIG_FILE=/app/mediator_config.json \
    MEDIATOR_LISTEN_HOST=0.0.0.0 \
    MEDIATOR_LISTEN_PORT=8000 \
    MEDIATOR_STATE_DIR=/var/lib/mediator

# A fixed uid and gid, so that the volume's owner is the same in every image and a bind mount can be chowned to it.
RUN groupadd --system --gid 10001 mediator \
    && useradd --system --uid 10001 --gid mediator --home-dir /var/lib/mediator --no-create-home \
       --shell /usr/sbin/nologin mediator \
    && install -d -o mediator -g mediator -m 0700 /var/lib/mediator

# The wheels are mounted from the build stage (BuildKit, the default builder since Docker 23), not copied, so that
# no layer keeps them.
RUN --mount=type=bind,from=build,source=/wheels,target=/wheels \
    pip install --no-cache-dir --no-index --find-links=/wheels openimis-dhis2-mediator \
    && test ! -e /usr/local/bin/fake-dhis2 \
    && python -c "import importlib.util as u, sys; sys.exit(u.find_spec('fake_dhis2') is not None)"

WORKDIR /app
COPY mediator_config.json /app/mediator_config.json

USER 10001:10001
VOLUME ["/var/lib/mediator"]
EXPOSE 8000

# Liveness only (/health: the process answers); /ready also needs DHIS2 and OpenHIM, which a restart cannot fix.
HEALTHCHECK --interval=30s --timeout=5s --start-period=90s --retries=3 \
    CMD ["python", "-c", "import os, sys, urllib.request; port = os.environ.get('MEDIATOR_LISTEN_PORT') or '8000'; sys.exit(urllib.request.urlopen(f'http://127.0.0.1:{port}/health', timeout=4).status != 200)"]

CMD ["openimis-dhis2-mediator", "serve"]
