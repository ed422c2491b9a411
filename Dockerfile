# Chronoseal image: API, worker and built-in TSA share it; the command picks the part.
# Untested on the development machines (no Docker engine there); see README.
FROM python:3.11-slim AS build
COPY requirements.txt /tmp/requirements.txt
RUN python -m venv /opt/venv \
 && /opt/venv/bin/pip install --no-cache-dir -r /tmp/requirements.txt

FROM python:3.11-slim
# openssl: the evidence bundles' verify.py and `openssl ts -verify` need it.
RUN apt-get update && apt-get install -y --no-install-recommends openssl \
 && rm -rf /var/lib/apt/lists/* \
 && useradd --system --create-home --uid 10001 chronoseal \
 && mkdir -p /data && chown chronoseal /data
COPY --from=build /opt/venv /opt/venv
# The source tree stays in /app so config/ sits beside the package, as in a checkout.
COPY service /app/service
COPY workers /app/workers
COPY config /app/config
RUN printf '#!/bin/sh\nexec python -m service.cli "$@"\n' > /opt/venv/bin/chronoseal \
 && chmod 755 /opt/venv/bin/chronoseal
WORKDIR /app
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONPATH=/app \
    CHRONOSEAL_DATA_DIR=/data \
    CHRONOSEAL_API_HOST=0.0.0.0 \
    PYTHONUNBUFFERED=1
USER chronoseal
VOLUME /data
EXPOSE 8318 8319
# Liveness (/healthz): Docker marks the container unhealthy when the process stops answering
# or no stamping worker heartbeats; readiness to stamp (/readyz) is for load balancers.
HEALTHCHECK --interval=30s --timeout=5s --start-period=20s --retries=3 \
  CMD python -c "import urllib.request,sys; sys.exit(urllib.request.urlopen('http://127.0.0.1:8318/healthz', timeout=4).status != 200)"
CMD ["chronoseal", "serve"]
