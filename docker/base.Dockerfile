# The runtime every TradeSense service image starts from: the locked dependencies
# (without the local-only Envoy and PostgreSQL wheels), the generated protobuf code and
# the application. Build: docker build -f docker/base.Dockerfile -t tradesense-base:VERSION .
FROM python:3.11.7-slim-bookworm AS build
ENV UV_COMPILE_BYTECODE=1 UV_LINK_MODE=copy UV_PYTHON_DOWNLOADS=never
WORKDIR /app
RUN pip install --no-cache-dir uv==0.13.8
COPY pyproject.toml uv.lock README.md ./
# Dependencies first, so code changes reuse this layer.
RUN uv sync --frozen --no-default-groups --no-install-project
COPY protos ./protos
COPY services ./services
COPY gateway ./gateway
COPY devstack ./devstack
RUN uv sync --frozen --no-default-groups && .venv/bin/python -m devstack.protogen

FROM python:3.11.7-slim-bookworm AS runtime
# Non-root, no shell history, no bytecode writes: runs on a read-only root filesystem.
RUN groupadd --system --gid 10001 app && useradd --system --uid 10001 --gid app --home-dir /nonexistent app
ENV PATH=/app/.venv/bin:$PATH PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 HOME=/tmp
WORKDIR /app
COPY --from=build --chown=root:root /app/.venv /app/.venv
COPY --from=build --chown=root:root /app/gen /app/gen
COPY --from=build --chown=root:root /app/services /app/services
COPY --from=build --chown=root:root /app/gateway /app/gateway
USER 10001:10001
