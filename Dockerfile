# syntax=docker/dockerfile:1
# Two stages: compile with the full Rust image, ship only the binary on a slim Debian of the same
# release (same glibc). BuildKit cache mounts keep the cargo registry and target dir between
# builds, so rebuilding after a source change does not recompile every dependency.

FROM rust:1-bookworm AS builder
WORKDIR /src
COPY . .
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/src/target \
    cargo build --release --locked --bin pulse \
    && cp target/release/pulse /usr/local/bin/pulse
# The bundled model and ONNX Runtime, built the same way as on a developer machine (PyPI only,
# no torch); only the shared library and the built bundles go into the final image.
RUN apt-get update && apt-get install -y --no-install-recommends python3-venv \
    && mkdir -p /opt/pulse/lib \
    && PULSE_HOME=/opt/pulse bash scripts/models.sh > /opt/pulse/models.env \
    && cp /opt/pulse/venv/lib/python3*/site-packages/onnxruntime/capi/libonnxruntime.so.* /opt/pulse/lib/libonnxruntime.so

FROM debian:bookworm-slim
# ca-certificates for TLS connections to managed PostgreSQL/Redis.
RUN apt-get update \
    && apt-get install -y --no-install-recommends ca-certificates \
    && rm -rf /var/lib/apt/lists/* \
    && useradd --system --uid 10001 --home-dir /app --shell /usr/sbin/nologin pulse
COPY --from=builder /usr/local/bin/pulse /usr/local/bin/pulse
COPY --from=builder /opt/pulse/lib /opt/pulse/lib
COPY --from=builder /opt/pulse/models /opt/pulse/models
ENV ORT_DYLIB_PATH=/opt/pulse/lib/libonnxruntime.so \
    PULSE_MODEL_DIR=/opt/pulse/models/minilm-tweets-l4-fp32 \
    PULSE_MULTILINGUAL_MODEL_DIR=/opt/pulse/models/e5-multilingual-int8
# pulse.toml, when mounted, is looked up in the working directory.
WORKDIR /app
USER pulse
ENV PULSE_LISTEN=0.0.0.0:8080
EXPOSE 8080
# Authentication on: the image listens on every interface, so it starts only with
# PULSE_AUTH__JWT_SECRET set. An open demo is docker-compose.yml's, published on loopback.
CMD ["pulse", "serve"]
