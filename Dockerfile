# syntax=docker/dockerfile:1.7
# signet: release build on Debian bookworm, run on distroless (glibc, no shell, uid 65532).
#   docker build -t signet:0.1.0 .
# Protos compile with protox (pure Rust) in build.rs: the builder needs no protoc.

ARG RUST_VERSION=1

FROM rust:${RUST_VERSION}-bookworm AS builder
WORKDIR /src
COPY . .
# Cache mounts keep the registry and target/ between builds (BuildKit); the binary is
# copied out of the cached target/ because cache mounts are not part of the layer.
RUN --mount=type=cache,target=/usr/local/cargo/registry,sharing=locked \
    --mount=type=cache,target=/usr/local/cargo/git,sharing=locked \
    --mount=type=cache,target=/src/target,sharing=locked \
    cargo build --release --locked --bin signet \
 && install -D -m 0755 target/release/signet /out/signet

# cc: glibc + libgcc, which a Rust binary links dynamically; :nonroot runs as 65532.
FROM gcr.io/distroless/cc-debian12:nonroot
LABEL org.opencontainers.image.title="signet" \
      org.opencontainers.image.description="Central gRPC authorization service: QStash signatures and bearer credentials" \
      org.opencontainers.image.licenses="Apache-2.0"
COPY --from=builder /out/signet /signet
USER 65532:65532
# gRPC (server.listen) and Prometheus metrics (metrics.listen, /metrics).
EXPOSE 50051 9090
ENTRYPOINT ["/signet"]
CMD ["serve", "--config", "/etc/signet/signet.toml"]
