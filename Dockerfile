# syntax=docker/dockerfile:1
# One build, one small non-root image per binary:
#   docker build --target gateway -t olincloud/gateway .
#   (targets: gateway, worker, control, migrations, olinctl)
# The runtime images are distroless (glibc, CA certificates, no shell) and run
# as uid 65532; each service answers /healthz and /readyz for its probes on
# an admin port of its own (gateway 9090, worker 9091, control 9092), apart
# from the public one.

FROM rust:1.95-bookworm AS build
WORKDIR /src
COPY . .
RUN cargo build --release --locked \
      -p olin-gateway -p olin-worker -p olin-control -p olin-migrations -p olin-cli \
 && mkdir /out \
 && cp target/release/olin-gateway target/release/olin-worker target/release/olin-control \
       target/release/olin-migrations target/release/olinctl /out/

FROM gcr.io/distroless/cc-debian12:nonroot AS runtime
USER 65532:65532
ENV LOG_FORMAT=json

FROM runtime AS gateway
COPY --from=build /out/olin-gateway /usr/local/bin/olin-gateway
ENV GATEWAY_ADMIN_LISTEN=0.0.0.0:9090
EXPOSE 8080 9090
ENTRYPOINT ["/usr/local/bin/olin-gateway"]

FROM runtime AS worker
COPY --from=build /out/olin-worker /usr/local/bin/olin-worker
EXPOSE 9091
ENTRYPOINT ["/usr/local/bin/olin-worker"]

FROM runtime AS control
COPY --from=build /out/olin-control /usr/local/bin/olin-control
ENV CONTROL_LISTEN=0.0.0.0:8081 CONTROL_ADMIN_LISTEN=0.0.0.0:9092
EXPOSE 8081 9092
ENTRYPOINT ["/usr/local/bin/olin-control"]

FROM runtime AS migrations
COPY --from=build /out/olin-migrations /usr/local/bin/olin-migrations
ENTRYPOINT ["/usr/local/bin/olin-migrations"]
CMD ["up"]

FROM runtime AS olinctl
COPY --from=build /out/olinctl /usr/local/bin/olinctl
ENTRYPOINT ["/usr/local/bin/olinctl"]
