# hookline image: one image, two processes (`hookline api`, `hookline worker`).

# The wheel is built where a C compiler is: HOOKLINE_COMPILE=1 compiles the hot-path modules.
FROM python:3.11-slim AS build
RUN apt-get update \
    && apt-get install -y --no-install-recommends gcc libc6-dev \
    && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY pyproject.toml setup.py README.md ./
COPY hookline ./hookline
RUN HOOKLINE_COMPILE=1 pip wheel --no-cache-dir --no-deps --wheel-dir /wheels .

FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

COPY --from=build /wheels /wheels
COPY constraints.txt /tmp/constraints.txt
RUN pip install --no-cache-dir -c /tmp/constraints.txt /wheels/*.whl \
    && rm -rf /wheels /tmp/constraints.txt

# Run unprivileged; the service needs no files of its own at run time.
RUN useradd --system --uid 10001 --no-create-home --shell /usr/sbin/nologin hookline
USER hookline

# 8000: the API (`hookline api`), 9100: the worker's Prometheus metrics.
EXPOSE 8000 9100

CMD ["hookline", "worker"]
