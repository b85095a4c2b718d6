# syntax=docker/dockerfile:1
#
# Secure MCP Server container image.
#
#   docker build -t secure-mcp-server .
#   docker run --rm -p 3000:3000 --read-only --tmpfs /tmp -v mcp-data:/data \
#     -e JWT_SECRET=... -e ENCRYPTION_KEY=... secure-mcp-server
#
# A new named volume inherits /data's owner (10001). The server chmods DATA_DIR to 0700, so
# on a mount it does not own (bind mount, tmpfs, Kubernetes emptyDir) point DATA_DIR at a
# subdirectory, e.g. DATA_DIR=/data/server, as the Helm chart does.
#
# Stages: toolchain (npm + native build fallback) -> deps (production node_modules)
#         toolchain -> build (full install, compile) ; runtime takes node_modules from
#         deps and dist/ from build, so no devDependency or compiler reaches the image.

ARG NODE_IMAGE=node:24-bookworm-slim

# ---------------------------------------------------------------------------
FROM ${NODE_IMAGE} AS toolchain
# bcrypt ships prebuilt binaries; python3/make/g++ are only the node-gyp fallback
# for platforms without one. They never reach the runtime stage.
RUN apt-get update \
 && apt-get install -y --no-install-recommends python3 make g++ \
 && rm -rf /var/lib/apt/lists/*
ENV SCARF_ANALYTICS=false \
    npm_config_audit=false \
    npm_config_fund=false \
    npm_config_update_notifier=false
WORKDIR /app
COPY package.json package-lock.json ./

# ---------------------------------------------------------------------------
FROM toolchain AS deps
RUN npm ci --omit=dev && npm cache clean --force

# ---------------------------------------------------------------------------
FROM toolchain AS build
RUN npm ci
COPY . .
RUN npm run build \
 && test -f dist/apps/server/src/main.js

# ---------------------------------------------------------------------------
FROM ${NODE_IMAGE} AS runtime

ARG APP_VERSION=0.1.0
LABEL org.opencontainers.image.title="secure-mcp-server" \
      org.opencontainers.image.description="Enterprise gateway through which AI agents reach tools over the Model Context Protocol" \
      org.opencontainers.image.version="${APP_VERSION}" \
      org.opencontainers.image.licenses="Apache-2.0"

ENV NODE_ENV=production \
    HOST=0.0.0.0 \
    PORT=3000 \
    DATA_DIR=/data

# Fixed non-root uid/gid 10001 (numeric, so runAsNonRoot can verify it). The package
# managers are not needed at run time and are removed to shrink the attack surface.
RUN groupadd --system --gid 10001 app \
 && useradd --system --uid 10001 --gid 10001 --home-dir /nonexistent --no-create-home \
      --shell /usr/sbin/nologin app \
 && mkdir -p /data \
 && chown 10001:10001 /data \
 && chmod 0750 /data \
 && rm -rf /usr/local/lib/node_modules/npm /usr/local/lib/node_modules/corepack \
      /usr/local/bin/npm /usr/local/bin/npx /usr/local/bin/corepack

WORKDIR /app
# Application files stay owned by root: the process can read but never modify them.
COPY --from=deps /app/node_modules ./node_modules
COPY --from=build /app/dist ./dist
COPY package.json ./

USER 10001:10001
EXPOSE 3000
VOLUME ["/data"]
STOPSIGNAL SIGTERM

HEALTHCHECK --interval=30s --timeout=5s --start-period=60s --retries=3 \
  CMD ["node", "-e", "fetch('http://127.0.0.1:'+(process.env.PORT||3000)+'/api/v1/health',{signal:AbortSignal.timeout(4000)}).then(r=>process.exit(r.status===200?0:1),()=>process.exit(1))"]

# node is PID 1 and handles SIGTERM itself (graceful shutdown); use `docker run --init`
# if you want a reaper for stray child processes.
CMD ["node", "dist/apps/server/src/main.js"]
