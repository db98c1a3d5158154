# The labflow worker and API: one image, compiled JavaScript on Node 24 (the current LTS); docker-compose.yml picks
# the entry point per service (node dist/workers/main.js, node dist/api/server.js, node dist/scripts/migrate.js).
#   build          every dependency, then `npm run build`: tsc into dist/ and the prebuilt workflow bundle
#   dependencies   the runtime dependencies only (--omit=dev)
#   the image      those two, pg_dump, and nothing else, run as the unprivileged `node` user
ARG NODE_IMAGE=node:24-bookworm-slim

FROM ${NODE_IMAGE} AS build
WORKDIR /src
COPY package.json package-lock.json ./
RUN npm ci --no-audit --no-fund
# Everything else that .dockerignore lets through: new source folders need no change here.
COPY . .
RUN npm run build

FROM ${NODE_IMAGE} AS dependencies
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci --omit=dev --no-audit --no-fund && npm cache clean --force

FROM ${NODE_IMAGE}
# pg_dump for the backup workflow: Debian bookworm's client is PostgreSQL 15, matching the server in compose.
RUN apt-get update \
  && apt-get install -y --no-install-recommends postgresql-client ca-certificates \
  && rm -rf /var/lib/apt/lists/*

WORKDIR /app
# Stack traces point into the TypeScript sources' lines (the build writes source maps).
ENV NODE_ENV=production NODE_OPTIONS=--enable-source-maps
COPY --from=dependencies /app/node_modules ./node_modules
COPY --from=build /src/package.json ./package.json
# The compiled worker loads dist/workflow-bundle.js by itself: it never runs webpack at start-up.
COPY --from=build /src/dist ./dist

# DATA_DIR: the outbox and other files the worker keeps; BACKUP_DIR: the database dumps. Both are volumes in compose,
# created here so a new named volume starts out owned by `node`, which must write them.
RUN mkdir -p /var/lib/labflow/backups && chown -R node:node /var/lib/labflow
ENV DATA_DIR=/var/lib/labflow BACKUP_DIR=/var/lib/labflow/backups

USER node
EXPOSE 3000 9464
CMD ["node", "dist/api/server.js"]
