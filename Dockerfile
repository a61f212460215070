# syntax=docker/dockerfile:1
# Builds a static oidc-bridge on a distroless, non-root base. The image has
# no PostgreSQL binaries: set BRIDGE_DATABASE_URL to a Postgres server.
# Base images are pinned by digest (the multi-platform index), the tag kept
# for the reader: a tag can be moved, a digest cannot. To update one, see
# docs/operations.md, "Base images" (scripts/pin-base-images.sh prints the
# current digests; Dependabot proposes them, .github/dependabot.yml).
# deploy/deploytest fails on a base image without its digest.
FROM golang:1.26-bookworm@sha256:a688600ca24f8a4d3ca77f95b0dd40704a9fc787c826660eb7ba0b641b8b175d AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
ARG VERSION=dev
RUN CGO_ENABLED=0 go build -trimpath -ldflags="-s -w -X main.version=${VERSION}" -o /out/oidc-bridge ./cmd/oidc-bridge

FROM gcr.io/distroless/static-debian12:nonroot@sha256:d093aa3e30dbadd3efe1310db061a14da60299baff8450a17fe0ccc514a16639
COPY --from=build /out/oidc-bridge /usr/local/bin/oidc-bridge
USER nonroot:nonroot
ENV BRIDGE_LISTEN_ADDR=0.0.0.0:8080
EXPOSE 8080
ENTRYPOINT ["/usr/local/bin/oidc-bridge"]
CMD ["serve"]
