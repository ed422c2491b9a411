# Chronoseal image: API, worker and built-in TSA share it; the command picks the part.
# Untested on the development machines (no Docker engine there); see README.
FROM python:3.11-slim AS build
WORKDIR /src
COPY requirements.txt pyproject.toml README.md ./
COPY service ./service
COPY workers ./workers
RUN python -m venv /opt/venv \
 && /opt/venv/bin/pip install --no-cache-dir -r requirements.txt \
 && /opt/venv/bin/pip install --no-cache-dir --no-deps .

FROM python:3.11-slim
# openssl: the evidence bundles' verify.py and `openssl ts -verify` need it.
RUN apt-get update && apt-get install -y --no-install-recommends openssl \
 && rm -rf /var/lib/apt/lists/* \
 && useradd --system --create-home --uid 10001 chronoseal \
 && mkdir -p /data && chown chronoseal /data
COPY --from=build /opt/venv /opt/venv
COPY config /app/config
WORKDIR /app
ENV PATH=/opt/venv/bin:$PATH \
    CHRONOSEAL_DATA_DIR=/data \
    CHRONOSEAL_CONFIG=/app/config/chronoseal.toml \
    CHRONOSEAL_API_HOST=0.0.0.0 \
    PYTHONUNBUFFERED=1
USER chronoseal
VOLUME /data
EXPOSE 8318 8319
HEALTHCHECK --interval=30s --timeout=5s --start-period=20s --retries=3 \
  CMD python -c "import urllib.request,sys; sys.exit(urllib.request.urlopen('http://127.0.0.1:8318/healthz', timeout=4).status != 200)"
CMD ["chronoseal", "serve"]
