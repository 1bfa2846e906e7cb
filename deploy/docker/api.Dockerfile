# HoneyBee api: REST API (9002, with /health /ready /metrics).
# Built by `make images` from a static binary that the Makefile builds on the
# host (CGO_ENABLED=0) into bin/docker/, the build context. No base image, no
# shell, no package manager: nothing here is pulled from a registry.
# No CA bundle either: the services dial NATS and serve their own TLS; add
# /etc/ssl/certs/ca-certificates.crt only if you point them at a NATS with a
# certificate from a public CA.
FROM scratch
ARG VERSION=dev
LABEL org.opencontainers.image.vendor="HoneyBee" \
      org.opencontainers.image.title="honeybee-api" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.description="HoneyBee api: REST API (9002, with /health /ready /metrics)."
COPY api /api
# Docker/Compose health checks exec this (there is no shell or curl).
COPY healthcheck /healthcheck
USER 65532:65532
EXPOSE 9002
ENTRYPOINT ["/api"]
