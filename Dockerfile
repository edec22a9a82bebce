# Static controller binary on distroless: no shell, non-root (UID 65532).
FROM golang:1.26 AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY cmd ./cmd
COPY internal ./internal
ARG VERSION=dev
RUN CGO_ENABLED=0 go build -trimpath -ldflags "-s -w -X main.version=${VERSION}" -o /out/clearml-glue ./cmd/clearml-glue

FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /out/clearml-glue /usr/local/bin/clearml-glue
USER 65532:65532
ENTRYPOINT ["/usr/local/bin/clearml-glue"]
