# pullguard: validating admission webhook image.
#
# Base image: the official node image, Node 26 on Debian 13 "trixie", slim variant.
# - Node 26 is the Active LTS line (since 2026-10-28, supported until 2029-04-30); 24 and 22 are in
#   maintenance and 20 has reached end of life. All stages use the same line, so the modules npm installs
#   are the ones that run.
# - trixie (Debian 13) is Debian stable and the default variant of the official node images; bookworm
#   left Debian's regular security support in June 2026.
# - slim leaves out compilers and VCS tools: no dependency of pullguard builds native code.
# Pin by digest in your own build pipeline (node:26-trixie-slim@sha256:...) and let a bot update it.

# 1. build: dev dependencies (TypeScript, @types/node) and the compiler; only dist/src leaves this stage.
FROM node:26-trixie-slim AS build
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci --no-audit --no-fund
# Only what the compiler needs: tsconfig's `include` also lists test/**/*.ts, which matches nothing here.
COPY tsconfig.json ./
COPY src/ src/
RUN npx tsc -p tsconfig.json

# 2. deps: production dependencies only. None of them has an install script, so none is run.
FROM node:26-trixie-slim AS deps
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci --omit=dev --ignore-scripts --no-audit --no-fund

# 3. runtime: compiled JavaScript and production dependencies, owned by root and read-only to the
#    process, which runs as an unprivileged numeric user (runAsNonRoot can check a number, not a name).
FROM node:26-trixie-slim
LABEL org.opencontainers.image.title="pullguard" \
      org.opencontainers.image.description="Kubernetes validating admission webhook that refuses pods whose images cannot be pulled" \
      org.opencontainers.image.licenses="Apache-2.0"
ENV NODE_ENV=production
WORKDIR /app
COPY --from=deps /app/node_modules ./node_modules
# dist/src becomes dist, so the entrypoint is dist/cli.js; package.json carries "type": "module".
COPY --from=build /app/dist/src ./dist
COPY package.json ./
USER 10001:10001
# The HTTPS port (webhook, /healthz, /readyz, /metrics): pullguard's default --port.
EXPOSE 8443
# Exec form: node is PID 1 and receives SIGTERM itself, to finish in-flight reviews before exiting.
# --optimize-for-size: V8 keeps less free heap in hand (a big cluster with 100 000 cached answers,
# measured: 254 MB RSS instead of 305 MB; README, Performance). Here, not in NODE_OPTIONS, which
# refuses it.
ENTRYPOINT ["node", "--optimize-for-size", "dist/cli.js", "serve"]
