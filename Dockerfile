# The mediator under gunicorn. Settings come from MEDIATOR_* environment variables (see README).
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    MEDIATOR_CONFIG_FILE=/app/mediator_config.json \
    MEDIATOR_LISTEN_HOST=0.0.0.0 \
    MEDIATOR_LISTEN_PORT=8000 \
    MEDIATOR_STATE_DIR=/var/lib/mediator

WORKDIR /app
COPY pyproject.toml README.md mediator_config.json ./
COPY mediator ./mediator
COPY fake_dhis2 ./fake_dhis2
RUN pip install --no-cache-dir . \
    && useradd --system --home-dir /var/lib/mediator --create-home mediator

USER mediator
EXPOSE 8000
VOLUME ["/var/lib/mediator"]
CMD ["openimis-dhis2-mediator", "serve"]
