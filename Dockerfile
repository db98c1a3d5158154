# The labflow worker and API (one image; docker-compose.yml picks the entry point per service).
# TypeScript runs through tsx, a runtime dependency, so there is no build step and dev dependencies stay out.
FROM node:20-bookworm-slim

# pg_dump for the backup workflow: Debian bookworm's client is PostgreSQL 15, matching the server in compose.
RUN apt-get update \
  && apt-get install -y --no-install-recommends postgresql-client ca-certificates \
  && rm -rf /var/lib/apt/lists/*

WORKDIR /app
ENV NODE_ENV=production

COPY package.json package-lock.json ./
RUN npm install --omit=dev --no-audit --no-fund && npm cache clean --force

# Everything else that .dockerignore lets through: new source folders need no change here.
COPY . .

# Workers load this prebuilt bundle (WORKFLOW_BUNDLE_PATH in docker-compose.yml) instead of running webpack at start.
RUN node --import tsx scripts/build-workflow-bundle.ts dist/workflow-bundle.js

# DATA_DIR: outbox, backups and other files the worker keeps; a volume in compose.
RUN mkdir -p /var/lib/labflow && chown node:node /var/lib/labflow
ENV DATA_DIR=/var/lib/labflow

USER node
EXPOSE 3000 9464
CMD ["node", "--import", "tsx", "api/server.ts"]
