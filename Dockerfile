# syntax=docker/dockerfile:1
# ghl-bridge: build stage compiles TypeScript; the runtime stage has production dependencies and dist/ only.
#   docker build -t ghl-bridge .
#   docker run --env-file .env -p 3000:3000 ghl-bridge
ARG NODE_IMAGE=node:20.20-bookworm-slim

FROM ${NODE_IMAGE} AS build
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci --no-audit --no-fund
COPY tsconfig.json tsconfig.build.json ./
COPY src ./src
RUN npm run build && npm prune --omit=dev

FROM ${NODE_IMAGE} AS runtime
ENV NODE_ENV=production \
    HOST=0.0.0.0 \
    PORT=3000 \
    DATA_DIR=/app/data
WORKDIR /app
# Application files stay root-owned (read-only for the process); only the data directory is writable.
COPY --from=build /app/package.json ./package.json
COPY --from=build /app/node_modules ./node_modules
COPY --from=build /app/dist ./dist
RUN mkdir -p /app/data && chown node:node /app/data
USER node
VOLUME ["/app/data"]
EXPOSE 3000
# The bridge drains requests and jobs on SIGTERM (SHUTDOWN_TIMEOUT_MS, default 15 s): give `docker stop`
# a longer grace period than that (`--time 30`, compose `stop_grace_period`).
STOPSIGNAL SIGTERM
HEALTHCHECK --interval=15s --timeout=5s --start-period=60s --retries=3 \
  CMD ["node", "-e", "fetch('http://127.0.0.1:' + (process.env.PORT || 3000) + '/readyz').then((r) => process.exit(r.ok ? 0 : 1), () => process.exit(1))"]
# Exec form: node is PID 1 and receives the stop signal itself.
ENTRYPOINT ["node", "dist/cli/main.js"]
CMD ["start"]
