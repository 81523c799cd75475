# herald: one static binary on a distroless base, running as non-root.
#   docker build --build-arg VERSION=v1.1.0 -t ghcr.io/heraldhq/herald:v1.1.0 .
ARG GO_VERSION=1.26.8

FROM golang:${GO_VERSION} AS build
WORKDIR /src
# Dependencies first, so a source change does not download them again.
COPY go.mod go.sum ./
RUN go mod download
COPY . .
# The version herald version and herald_build_info report (.git is not in
# the context, so the toolchain records none).
ARG VERSION=devel
RUN CGO_ENABLED=0 GOOS=linux go build -trimpath -buildvcs=false \
      -ldflags="-s -w -X github.com/heraldhq/herald/internal/buildinfo.version=${VERSION}" \
      -o /out/herald ./cmd/herald

# static: no libc, no shell; CA certificates included (herald calls WeChat
# and Alipay over TLS). nonroot is uid 65532, as the manifests expect.
FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /out/herald /usr/local/bin/herald
USER 65532:65532
EXPOSE 8080
ENTRYPOINT ["/usr/local/bin/herald"]
CMD ["worker"]
