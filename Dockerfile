# syntax=docker/dockerfile:1

# Build:  docker build -t triton-proxy:0.1.0 .
# Run:    docker run --rm -p 8000:8000 -e TRITON_SERVERS=triton=host.docker.internal:8001 triton-proxy:0.1.0
#
# Node 24 is the current LTS (see DESIGN.md: older majors make express markedly slower). The tag is pinned
# to a patch release so rebuilds are reproducible; bump it deliberately, together with .tools/ Node.
ARG NODE_IMAGE=node:24.21.0-bookworm-slim

# ---- deps: only the manifests, so this layer is reused until dependencies change ----
FROM ${NODE_IMAGE} AS deps
WORKDIR /app
ENV NPM_CONFIG_UPDATE_NOTIFIER=false NPM_CONFIG_FUND=false NPM_CONFIG_AUDIT=false
COPY package.json package-lock.json ./
RUN --mount=type=cache,target=/root/.npm npm ci

# ---- build: compile TypeScript, then drop dev dependencies from node_modules ----
FROM deps AS build
COPY tsconfig.json tsconfig.build.json ./
COPY protos ./protos
COPY src ./src
RUN npm run build \
 && npm prune --omit=dev

# ---- runtime: compiled JS, production node_modules and the .proto files loaded at startup ----
FROM ${NODE_IMAGE} AS runtime
ENV NODE_ENV=production \
    PORT=8000
WORKDIR /app
# A numeric UID/GID lets Kubernetes verify runAsNonRoot; it matches the chart's securityContext.
RUN groupadd --system --gid 10001 triton-proxy \
 && useradd --system --uid 10001 --gid 10001 --no-create-home --home-dir /nonexistent \
      --shell /usr/sbin/nologin triton-proxy
# Files stay owned by root, so the process cannot rewrite its own code.
COPY --from=build /app/package.json ./package.json
COPY --from=build /app/node_modules ./node_modules
COPY --from=build /app/dist ./dist
COPY --from=build /app/protos ./protos
USER 10001:10001
EXPOSE 8000
STOPSIGNAL SIGTERM
# Liveness only: a container is healthy while its event loop answers, whatever the state of Triton.
HEALTHCHECK --interval=15s --timeout=3s --start-period=10s --retries=3 \
  CMD ["node", "-e", "fetch('http://127.0.0.1:' + (process.env.PORT || 8000) + '/health/live').then((r) => process.exit(r.ok ? 0 : 1), () => process.exit(1))"]
# Exec form: Node is PID 1 and receives SIGTERM directly (no shell in between), and the proxy
# installs its own SIGTERM handler for the drain sequence.
CMD ["node", "dist/src/main.js"]
