# syntax=docker/dockerfile:1
# The promstream aggregator.
#   docker build -t promstream .
#   docker run --rm -p 3000:3000 -p 127.0.0.1:9102:9102 promstream                      # demo whitelist
#   docker run --rm -p 3000:3000 -v "$PWD/metrics:/config:ro" -e PROMSTREAM_CONFIG=/config promstream promstream serve
# Debian (glibc), not Alpine: uWebSockets.js ships prebuilt binaries for glibc only (without them the
# server falls back to ws, and says so in one log line). Node 24 (the active LTS line) on Debian 13: the
# binaries of @btc-vision/uwebsockets.js 20.57.0 (the build for Node 20-25, README "Dependencies") need
# glibc 2.38 or newer, which bookworm (2.36) does not have. The start-up line names the build it loaded.
ARG NODE_IMAGE=node:24-trixie-slim

FROM ${NODE_IMAGE} AS build
WORKDIR /app
COPY package.json package-lock.json ./
# `prepare` would run the build now, before the sources are copied: it runs as its own step below, and
# the dependency layer stays cached while only sources change. npm's download cache lives in a BuildKit
# cache mount: shared between builds, never part of a layer.
RUN --mount=type=cache,target=/root/.npm npm ci --ignore-scripts
# The context holds only what .dockerignore lets in (sources, scripts/, examples/): all of it.
COPY . .
RUN npm run build

FROM ${NODE_IMAGE}
# tini is PID 1: it passes SIGTERM on to node, which drains (1012 to every client over --drain-window)
# and exits 0; it also reaps zombies. `docker run --init` would do the same, but Kubernetes has no such flag.
RUN apt-get update \
 && apt-get install -y --no-install-recommends tini \
 && rm -rf /var/lib/apt/lists/*
ENV NODE_ENV=production
WORKDIR /app
COPY package.json package-lock.json ./
# --ignore-scripts: `prepare` (the build) has already run in the build stage, and no runtime dependency
# needs an install script: the uWebSockets.js builds (optional dependencies) ship prebuilt binaries
# and msgpackr's native extension is an optional prebuilt package with a pure-JS fallback.
# --omit=optional instead would leave out every third-party native binary: the server then runs on ws.
RUN --mount=type=cache,target=/root/.npm npm ci --omit=dev --ignore-scripts
COPY bin ./bin
COPY examples ./examples
COPY --from=build /app/dist ./dist
# What `npm install -g` would do: `promstream` on PATH (docker run IMAGE promstream check-config /config).
RUN ln -s /app/bin/promstream.js /usr/local/bin/promstream
# The files stay owned by root and read-only to the server: it writes nothing but its log on stdout.
USER node
# 3000: clients (WebSocket /ws, /healthz, demo page); 9102: Prometheus (/metrics, /healthz, /readyz).
EXPOSE 3000 9102
# No curl in the slim image: `promstream health` asks the private side's /healthz on
# PROMSTREAM_METRICS_PORT (default 9102), within 2 s (exit 0 healthy, 1 not, the reason on stderr).
# Docker keeps HEALTHCHECK; podman/buildah only with --format docker (the OCI format has no field for it).
HEALTHCHECK --interval=10s --timeout=3s --start-period=10s --retries=3 \
  CMD ["promstream", "health"]
ENTRYPOINT ["/usr/bin/tini", "--"]
CMD ["promstream", "serve", "--demo"]
