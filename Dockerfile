# syntax=docker/dockerfile:1
# pushline: one image for every process (logic, job, comet, the CLI tools); the command picks.
#   docker build -t pushline .
#   docker run --rm pushline --help
# Stage 1 installs the production dependencies only; stage 2 is the runtime, as a non-root user.
FROM node:20-bookworm-slim AS deps
WORKDIR /app
COPY package.json package-lock.json ./
# No install scripts run (the project approves none); dev dependencies (vitest, typescript) stay out.
RUN npm ci --omit=dev --ignore-scripts && npm cache clean --force

FROM node:20-bookworm-slim AS runtime
# tini reaps and forwards signals, so SIGTERM from `docker stop` reaches the graceful shutdown;
# redis-tools gives scripts/check_redis_*.sh their redis-cli.
RUN apt-get update \
 && apt-get install -y --no-install-recommends tini redis-tools \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /app
ENV NODE_ENV=production \
    AUDIO_WORK_DIR=/data/audio
COPY --from=deps /app/node_modules ./node_modules
COPY package.json ./
COPY bin ./bin
COPY src ./src
COPY proto ./proto
COPY scripts ./scripts
RUN mkdir -p /data/audio && chown -R node:node /data
USER node
ENTRYPOINT ["/usr/bin/tini", "--", "node", "bin/pushline.js"]
CMD ["--help"]
