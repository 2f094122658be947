# One image, two services: `python -m orders` (the default) or `python -m invoices`.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

WORKDIR /app
COPY pyproject.toml setup.cfg README.md LICENSE ./
COPY fencing ./fencing
COPY servicekit ./servicekit
COPY orders ./orders
COPY invoices ./invoices
COPY devstack ./devstack
COPY docs/openapi.yaml ./docs/openapi.yaml
COPY .env.production ./
# The library and the services in one resolve: the services' redis-fencing is ./fencing.
RUN pip install ./fencing . \
    && useradd --system --uid 10001 --no-create-home app

USER app
EXPOSE 3000 3001
HEALTHCHECK --interval=10s --timeout=3s --retries=3 \
    CMD python -c "import os, urllib.request; port = os.environ.get('SERVICE_PORT', '3000'); urllib.request.urlopen(f'http://127.0.0.1:{port}/health', timeout=2)"
CMD ["python", "-m", "orders", "--env=production"]
