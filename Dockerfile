# syntax=docker/dockerfile:1

# Build: a static binary (no cgo, so it runs on distroless/static), with
# paths trimmed and symbols stripped. The cache mounts keep modules and build
# results between builds.
FROM golang:1.26 AS build
WORKDIR /src
COPY . .
RUN --mount=type=cache,target=/go/pkg/mod \
    --mount=type=cache,target=/root/.cache/go-build \
    CGO_ENABLED=0 go build -trimpath -ldflags "-s -w" -o /out/gateway ./cmd/gateway

# Run: no shell, no package manager, uid 65532. `gateway healthcheck` is the
# health probe because there is no shell to run anything else.
FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /out/gateway /gateway
USER nonroot:nonroot
EXPOSE 50051
HEALTHCHECK --interval=10s --timeout=5s --start-period=5s --retries=3 \
    CMD ["/gateway", "healthcheck"]
ENTRYPOINT ["/gateway"]
CMD ["serve"]
