# ticketbooth: build in one stage, run the built CLI in a slim second one as a non-root user.
# Every step here is one .ci/run also exercises on a clean Debian machine (npm ci, npm run build,
# the built CLI starting), since no container engine runs where this is developed.

FROM node:24-bookworm-slim AS build
WORKDIR /src
COPY package.json package-lock.json ./
RUN npm ci --no-audit --no-fund
COPY tsconfig.json ./
COPY src ./src
COPY scripts/bundle.ts ./scripts/
RUN npm run build && npm prune --omit=dev

FROM node:24-bookworm-slim
# The system CA store for upstream verification (verify: true uses Node's bundled and system CAs).
RUN apt-get update \
 && apt-get install -y --no-install-recommends ca-certificates \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /app
ENV NODE_ENV=production
COPY --from=build /src/package.json ./
COPY --from=build /src/node_modules ./node_modules
COPY --from=build /src/dist/src ./dist/src
# The container config (listeners on 0.0.0.0 for private-range clients, admin on 0.0.0.0:9464, audit
# and logs on stdout/stderr), so the image is useful as shipped; mount your own directory over
# /etc/ticketbooth to replace it. Read-only for the runtime user; nothing is written (the audit log
# is stdout), so the image runs with a read-only root file system.
COPY config/container.yaml /etc/ticketbooth/ticketbooth.yaml
# The one writable path, for a config that sends the audit log to a file instead (`audit.file:
# /var/log/ticketbooth/audit.jsonl`): mount a volume there to keep it.
RUN mkdir -p /var/log/ticketbooth && chown node:node /var/log/ticketbooth
# The `node` user (uid 1000) of the base image; listeners bind unprivileged ports.
USER node
EXPOSE 10025 9464
# Probes /readyz on the admin listener (`admin.listen` in the config, probed on loopback when it
# binds 0.0.0.0). A config without `admin`: `health` checks instead that each listener's port is
# bound, says so, and exits 0 or 1 on that (README, "Container").
HEALTHCHECK --interval=30s --timeout=5s --start-period=10s --retries=3 CMD ["node", "/app/dist/src/cli.js", "health", "--config", "/etc/ticketbooth/ticketbooth.yaml"]
ENTRYPOINT ["node", "--max-semi-space-size=1", "/app/dist/src/cli.js"]
CMD ["serve", "--config", "/etc/ticketbooth/ticketbooth.yaml"]
