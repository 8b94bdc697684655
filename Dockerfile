# The awe image for docker-compose: the CLI, workers and the gateway (awe worker, awe gateway, ...).
FROM python:3.11-slim
WORKDIR /app
COPY pyproject.toml README.md ./
COPY schemas schemas
COPY streams streams
COPY agents agents
COPY gateway gateway
COPY awe awe
COPY examples examples
RUN pip install --no-cache-dir .
ENV AWE_KAFKA_BOOTSTRAP=kafka:19092 \
    AWE_METRICS_HOST=0.0.0.0 \
    AWE_LOG_FORMAT=json
ENTRYPOINT ["awe"]
CMD ["worker"]
