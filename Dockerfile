# ticketbooth: build in one stage, run the built CLI in a slim second one as a non-root user.
# Every step here is one .ci/run also exercises on a clean Debian machine (npm ci, npm run build,
# the built CLI starting), since no container engine runs where this is developed.

FROM node:24-bookworm-slim AS build
WORKDIR /src
COPY package.json package-lock.json ./
RUN npm ci --no-audit --no-fund
COPY tsconfig.json ./
COPY src ./src
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
# A default config so the image starts; mount your own directory over /etc/ticketbooth.
COPY config/default.yaml /etc/ticketbooth/ticketbooth.yaml
# The `node` user (uid 1000) of the base image; listeners bind unprivileged ports.
USER node
# Probes /readyz on the admin listener (`admin.listen` in the config; the default config has it).
HEALTHCHECK --interval=30s --timeout=5s --start-period=10s --retries=3 CMD ["node", "/app/dist/src/cli.js", "health", "--config", "/etc/ticketbooth/ticketbooth.yaml"]
ENTRYPOINT ["node", "--max-semi-space-size=2", "/app/dist/src/cli.js"]
CMD ["serve", "--config", "/etc/ticketbooth/ticketbooth.yaml"]
