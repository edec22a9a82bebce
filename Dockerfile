# syntax=docker/dockerfile:1
# The controller image for those with Docker (or BuildKit). `make image-oci` builds the same image
# without any container engine; both lay out the file system with ci/image (the "rootfs" command
# here, "build" there), so the files are the same: the static binary, CA certificates, passwd and
# group (nonroot = 65532), nsswitch.conf and /tmp, all owned by root. The config below matches
# ci/image's clearml-glue recipe (a test in ci/image checks it).
#
#   docker buildx build --platform linux/amd64,linux/arm64 --build-arg VERSION=0.1.0 \
#     --build-arg REVISION=$(git rev-parse HEAD) -t registry.example.com/clearml-glue:0.1.0 .
FROM --platform=$BUILDPLATFORM golang:1.26 AS build
WORKDIR /src
COPY go.mod go.sum ./
COPY ci/image/go.mod ci/image/go.sum ci/image/
RUN go mod download && cd ci/image && go mod download
COPY cmd ./cmd
COPY internal ./internal
# The chart is built into the binary (clearml-glue run --values renders it without a checkout).
COPY charts ./charts
COPY ci/image ./ci/image
ARG TARGETOS TARGETARCH
ARG VERSION=dev
# SOURCE_DATE_EPOCH (BuildKit passes it through as a build arg) fixes every file time.
ARG SOURCE_DATE_EPOCH=0
RUN CGO_ENABLED=0 GOOS=$TARGETOS GOARCH=$TARGETARCH \
      go build -trimpath -ldflags "-s -w -X main.version=${VERSION}" -o /out/clearml-glue ./cmd/clearml-glue && \
    cd ci/image && SOURCE_DATE_EPOCH=$SOURCE_DATE_EPOCH go run . rootfs -recipe clearml-glue \
      -binary /out/clearml-glue -ca-certs /etc/ssl/certs/ca-certificates.crt /out/rootfs

FROM scratch
COPY --from=build /out/rootfs/ /
USER 65532:65532
ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
ENV SSL_CERT_FILE=/etc/ssl/certs/ca-certificates.crt
WORKDIR /
EXPOSE 8080/tcp 8081/tcp
ARG VERSION=dev
ARG REVISION=""
LABEL org.opencontainers.image.title="clearml-glue" \
      org.opencontainers.image.description="Runs ClearML tasks from queues as Kubernetes Jobs" \
      org.opencontainers.image.source="https://github.com/clearml-glue/clearml-glue" \
      org.opencontainers.image.documentation="https://github.com/clearml-glue/clearml-glue/blob/main/docs/chart.md" \
      org.opencontainers.image.licenses="Apache-2.0" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.revision="${REVISION}"
ENTRYPOINT ["/usr/local/bin/clearml-glue"]
