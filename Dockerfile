# syntax=docker/dockerfile:1
# Builds a static oidc-bridge on a distroless, non-root base. The image has
# no PostgreSQL binaries: set BRIDGE_DATABASE_URL to a Postgres server.
FROM golang:1.26-bookworm AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
ARG VERSION=dev
RUN CGO_ENABLED=0 go build -trimpath -ldflags="-s -w -X main.version=${VERSION}" -o /out/oidc-bridge ./cmd/oidc-bridge

FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /out/oidc-bridge /usr/local/bin/oidc-bridge
USER nonroot:nonroot
ENV BRIDGE_LISTEN_ADDR=0.0.0.0:8080
EXPOSE 8080
ENTRYPOINT ["/usr/local/bin/oidc-bridge"]
CMD ["serve"]
