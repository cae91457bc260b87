# syntax=docker/dockerfile:1
# A small image with jobctl, for CI systems other than GitHub Actions
# (GitLab CI, Woodpecker, Buildkite, Jenkins, ...). The binary is static
# (musl); the runtime is Alpine for a shell and CA certificates.
#
#   docker build -t jobctl --build-arg JOBCTL_BUILD_COMMIT=$(git rev-parse --short=12 HEAD) .
#   docker run --rm jobctl jobctl --version
#   docker run --rm -e JOBCTL_SECRET_KEY -e JOBCTL_TOKEN -e JOBCTL_WORKER \
#     -e JOBCTL_RELAYS jobctl jobctl rerun -- -j build
#
# No ENTRYPOINT: CI systems run their own script in the image. Docs:
# docs/install.md.

ARG RUST_VERSION=1.95
ARG ALPINE_VERSION=3.22

FROM rust:${RUST_VERSION}-alpine AS build
# ring, SQLite (rusqlite's bundled copy) and secp256k1 are compiled C.
RUN apk add --no-cache musl-dev gcc
WORKDIR /src
COPY . .
# .dockerignore leaves .git out; pass the commit for `jobctl --version`.
ARG JOBCTL_BUILD_COMMIT=
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/src/target \
    JOBCTL_BUILD_COMMIT="${JOBCTL_BUILD_COMMIT}" \
    cargo build --release --locked --bin jobctl \
    && cp target/release/jobctl /usr/local/bin/jobctl

FROM alpine:${ALPINE_VERSION}
RUN apk add --no-cache ca-certificates \
    && adduser -D -u 10001 -h /home/jobctl jobctl
COPY --from=build /usr/local/bin/jobctl /usr/local/bin/jobctl
USER jobctl
WORKDIR /home/jobctl
# Keys, config, the journal and the wallet go under $HOME (XDG defaults);
# mount a volume at /home/jobctl/.local/share to keep the journal.
RUN jobctl --version
CMD ["jobctl", "--help"]
