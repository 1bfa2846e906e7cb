# NATS server with JetStream, built from the nats-server module version
# pinned in services/honeybee/go.mod (the same server the embedded core
# runs), by `make images`: go build -o bin/docker/nats-server
# github.com/nats-io/nats-server/v2. Override with NATS_IMAGE to use the
# official image instead (see deploy/README.md).
FROM scratch
ARG VERSION=dev
LABEL org.opencontainers.image.vendor="HoneyBee" \
      org.opencontainers.image.title="honeybee-nats" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.description="NATS server with JetStream for HoneyBee (4222 clients, 6222 routes, 8222 monitoring)."
COPY nats-server /nats-server
COPY healthcheck /healthcheck
COPY nats/ /etc/nats/
# The JetStream store. A new named volume mounted here copies this
# directory's owner, so the non-root server can write to it.
COPY --chown=65532:65532 data/ /data/
USER 65532:65532
VOLUME /data
EXPOSE 4222 6222 8222
ENTRYPOINT ["/nats-server"]
CMD ["-c", "/etc/nats/nats.conf"]
