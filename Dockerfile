# hookline image: one image, two processes (`hookline api`, `hookline worker`).
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

WORKDIR /app

# Metadata first (README.md is the package's readme, so the build needs it), code second.
COPY pyproject.toml README.md ./
COPY hookline ./hookline
RUN pip install --no-cache-dir . \
    && rm -rf /app/build

# Run unprivileged; the service needs no files of its own at run time.
RUN useradd --system --uid 10001 --no-create-home --shell /usr/sbin/nologin hookline
USER hookline

# 8000: the API (`hookline api`), 9100: the worker's Prometheus metrics.
EXPOSE 8000 9100

CMD ["hookline", "worker"]
