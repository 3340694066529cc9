# The timebank service image.
#
# Stage 1 builds wheels of timebank and of everything it needs; stage 2 installs only those
# wheels into a clean slim image, so no build tools or source tree end up in the image.
# The SQL (migrations, functions, grants) ships inside the timebank wheel as timebank/sql.
#
#   docker build -t timebank .
#   docker run -e TIMEBANK_DATABASE_URL=postgresql://... -p 8000:8000 timebank
#
# Without TIMEBANK_DATABASE_URL the service starts its embedded PostgreSQL in TIMEBANK_DATA_DIR
# (/var/lib/timebank here); mount a volume there to keep that data. docker-compose.yml runs it
# against a separate PostgreSQL instead, which is the way meant for production.

FROM python:3.11-slim AS build
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
WORKDIR /src
# Only what the wheel is built from (.dockerignore keeps everything else out of the context).
COPY pyproject.toml README.md ./
COPY sql ./sql
COPY timebank ./timebank
RUN pip wheel --wheel-dir /wheels .

FROM python:3.11-slim
ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    TIMEBANK_DATA_DIR=/var/lib/timebank \
    TIMEBANK_LOG_FORMAT=json
# A fixed, unprivileged uid, so that volume ownership is predictable across rebuilds.
RUN groupadd --system --gid 10001 timebank \
    && useradd --system --uid 10001 --gid timebank --home-dir /var/lib/timebank --create-home \
        --shell /usr/sbin/nologin timebank
# The passbook PDF's Chinese font (Noto Sans CJK SC, embedded in each PDF as a subset).
RUN apt-get update && apt-get install -y --no-install-recommends fonts-noto-cjk \
    && rm -rf /var/lib/apt/lists/*
COPY --from=build /wheels /tmp/wheels
RUN pip install --no-index --find-links=/tmp/wheels timebank && rm -rf /tmp/wheels
USER timebank:timebank
WORKDIR /var/lib/timebank
EXPOSE 8000
# The slim image has no curl; Python's standard library does the GET. urlopen raises on any
# status of 400 and above, so the check fails unless /health answers 2xx.
HEALTHCHECK --interval=15s --timeout=5s --start-period=30s --retries=3 \
    CMD ["python", "-c", "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:' + os.environ.get('TIMEBANK_PORT', '8000') + '/health', timeout=4)"]
CMD ["timebank", "serve", "--host", "0.0.0.0"]
