# The aegis image: the CLI and `aegis operator run`, with Trivy beside it.
#   docker build -t ghcr.io/aegis/aegis:0.1.0 .
# (This repository's CI has no Docker engine: the image is not built there; the chart and manifests
# are checked against a real API server instead.)
FROM docker.io/library/rust:1.95-bookworm AS build
WORKDIR /src
COPY . .
RUN cargo build --release --locked -p aegis-cli

# Trivy, pinned to the version the tests run (scripts/tools.sh).
FROM docker.io/aquasec/trivy:0.74.0 AS trivy

FROM gcr.io/distroless/cc-debian12:nonroot
COPY --from=build /src/target/release/aegis /usr/local/bin/aegis
COPY --from=trivy /usr/local/bin/trivy /usr/local/bin/trivy
ENV AEGIS_TRIVY_BIN=/usr/local/bin/trivy
USER 65532:65532
ENTRYPOINT ["/usr/local/bin/aegis"]
CMD ["operator", "run"]
