# The Davy controller image: one fully static `davy` binary, the CA bundle, a non-root user.
#
#   docker build -t ghcr.io/davy-dev/davy:v0.1.0 .      (or podman / buildah bud)
#
# The build stage runs scripts/image, which builds the same static binary without a container
# runtime. Pin the builder to the crate's MSRV line so the image builds like CI does.
ARG RUST_VERSION=1.89
FROM docker.io/library/rust:${RUST_VERSION}-bookworm AS build
WORKDIR /src
COPY . .
RUN scripts/image --out /out

# No shell, no package manager, no libc: the binary needs nothing but the CA bundle (for TLS
# to the API server and to metric providers).
FROM scratch
COPY --from=build /etc/ssl/certs/ca-certificates.crt /etc/ssl/certs/ca-certificates.crt
COPY --from=build /out/davy /usr/local/bin/davy
ENV PATH=/usr/local/bin
# The nonroot uid/gid of distroless images; the Deployment's securityContext says the same.
USER 65532:65532
EXPOSE 8090
ENTRYPOINT ["davy", "controller"]
