# brand-monitor: small image for an always-on VPS service.
FROM python:3.12-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    MONITOR_CONFIG=/etc/brand-monitor/config.yaml \
    MONITOR_DATABASE=sqlite+aiosqlite:////data/monitor.db

WORKDIR /app
COPY pyproject.toml README.md ./
COPY monitor ./monitor
COPY sources ./sources
COPY alerts ./alerts
RUN pip install . \
    && useradd --system --uid 10001 --home-dir /data monitor \
    && mkdir -p /data /etc/brand-monitor \
    && chown monitor /data
COPY config.example.yaml /etc/brand-monitor/config.yaml

USER monitor
VOLUME ["/data"]
HEALTHCHECK --interval=60s --timeout=10s --start-period=30s --retries=3 CMD ["monitor", "healthcheck"]
STOPSIGNAL SIGTERM
ENTRYPOINT ["monitor"]
CMD ["run"]
