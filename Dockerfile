# wf-server container image (DESIGN.md §7): multi-stage on Debian 12.
#   docker build -t wf-server .
#   docker run --rm -p 3011:3011 -e DATABASE_URL=postgresql://… wf-server

# ---- build: compilers and -dev packages, tests not built
FROM debian:12 AS build
RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
      build-essential cmake pkg-config \
      libmicrohttpd-dev libcjson-dev libcurl4-openssl-dev libpq-dev libssl-dev libjq-dev \
      libyaml-dev \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY . .
RUN cmake -S . -B /build -DBUILD_TESTING=OFF -DCMAKE_BUILD_TYPE=Release \
 && cmake --build /build -j"$(nproc)" \
 && install -D -m 0755 /build/wf-server /out/bin/wf-server \
 && install -D -m 0755 /build/wf-worker /out/bin/wf-worker \
 && install -D -m 0644 /build/wf-dsl.so /out/lib/wf/wf-dsl.so \
 && install -D -m 0755 /build/tools/wfctl /out/bin/wfctl \
 && install -D -m 0644 /build/sample-activities/sample_activities.so \
      /out/lib/wf/sample_activities.so \
 && install -D -m 0644 include/wf/plugin.h /out/include/wf/plugin.h

# ---- runtime: the shared libraries (libyaml for core and wfctl only: YAML
# definitions are converted before a worker sees them), curl for the health
# check, tzdata for schedules' time zones (read from /usr/share/zoneinfo at
# run time), the binaries (wf-server, wfctl), the sample-activities plugin
# and the plugin header
FROM debian:12
RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
      libmicrohttpd12 libcjson1 libcurl4 libpq5 libssl3 libjq1 libyaml-0-2 curl \
      ca-certificates tzdata \
 && rm -rf /var/lib/apt/lists/* \
 && useradd --system --user-group --uid 10001 --home-dir /var/lib/wf --create-home \
      --shell /usr/sbin/nologin wf
COPY --from=build /out/bin/ /usr/local/bin/
COPY --from=build /out/lib/ /usr/local/lib/
COPY --from=build /out/include/ /usr/local/include/
USER wf
WORKDIR /var/lib/wf
ENV PORT=3011 LOG_FORMAT=json WF_RUNTIME_DIR=/var/lib/wf/run
EXPOSE 3011
# Shell form, so ${PORT} is the container's value at run time. /health/ready
# answers 503 while the database is unreachable, core or the manager is down
# or migrations are not applied, which marks the container unhealthy (the
# same probe docker-compose.yml uses).
HEALTHCHECK --interval=30s --timeout=5s --start-period=10s --retries=3 \
  CMD curl -fsS http://127.0.0.1:${PORT}/health/ready || exit 1
# SIGTERM (docker stop) drains the workers; the server exits 0.
STOPSIGNAL SIGTERM
ENTRYPOINT ["/usr/local/bin/wf-server"]
