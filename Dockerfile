# syntax=docker/dockerfile:1
# pushline: one image for every process (logic, job, comet, the CLI tools); the command picks.
#   docker build -t pushline .
#   docker run --rm pushline --help        (docker run --rm pushline --version: the package's version)
# Stage 1 compiles src/ into dist/ (TypeScript is needed only here); stage 2 installs the
# production dependencies only; stage 3 is the runtime, as a non-root user, with dist/ and no
# TypeScript tooling.
FROM node:20-bookworm-slim AS build
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci --ignore-scripts --no-audit --no-fund
COPY tsconfig.json tsconfig.build.json ./
COPY tools ./tools
COPY src ./src
RUN npm run build

FROM node:20-bookworm-slim AS deps
WORKDIR /app
COPY package.json package-lock.json ./
# No install scripts run (the project approves none); dev dependencies (typescript, tsx, vitest) stay out.
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
# package.json carries the version the image reports (`pushline --version`, the package's too).
COPY package.json ./
COPY bin/pushline.js ./bin/
COPY --from=build /app/dist ./dist
COPY proto ./proto
COPY scripts ./scripts
RUN mkdir -p /data/audio && chown -R node:node /data
USER node
ENTRYPOINT ["/usr/bin/tini", "--", "node", "bin/pushline.js"]
CMD ["--help"]
