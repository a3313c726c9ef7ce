# Dockerfile -- the spate image: the `spate` command and gen-activity on
# Debian 12, with docker/spate-entrypoint, which turns SPATE_* environment
# variables into the flags of `spate driver` and `spate executor`
# (docker-compose.yml runs a cluster of it; docs/compose.md tells how).
#
#   docker build -t spate:latest .        (with a registry, as usual)
#   scripts/docker-image                  (here, with no registry: builds the
#                                          two Debian bases locally, then this)
#
# No `# syntax=` line and nothing BuildKit-only: the classic builder
# (DOCKER_BUILDKIT=0) must build it, since BuildKit would try to fetch its
# frontend from a registry.

# ---- build: the same toolchain and -dev packages as scripts/lib/common.sh,
# without the test-only one (Criterion)
FROM debian:bookworm AS build
RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends \
      build-essential cmake pkg-config \
      libzmq3-dev libmsgpack-dev liblmdb-dev libxxhash-dev zlib1g-dev \
      libjson-c-dev libmicrohttpd-dev libcurl4-openssl-dev \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /src
# .dockerignore keeps build trees, data, tests and .git out of the context.
COPY . .
RUN cmake -S . -B /build -DCMAKE_BUILD_TYPE=RelWithDebInfo -DBUILD_TESTING=OFF >/dev/null \
 && cmake --build /build -j"$(nproc)" --target spate gen-activity \
 && strip --strip-debug /build/cli/spate /build/scripts/src/gen-activity

# ---- run: the runtime libraries only
FROM debian:bookworm-slim
RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends \
      libzmq5 libmsgpackc2 liblmdb0 libxxhash0 zlib1g \
      libjson-c5 libmicrohttpd12 libcurl4 \
 && rm -rf /var/lib/apt/lists/*
COPY --from=build /build/cli/spate /build/scripts/src/gen-activity /usr/local/bin/
COPY docker/spate-entrypoint /usr/local/bin/spate-entrypoint
# The entrypoint starts as root only to settle file ownership (the checkpoint
# is written as the owner of the bind-mounted directory, so the host user
# can read and resume it; see docker/spate-entrypoint), then runs spate as
# that user. Mount points for docker-compose.yml's bind mounts and volume:
RUN mkdir -p /data/input /data/checkpoint /keys && chmod 0700 /keys
WORKDIR /data
EXPOSE 7077 4040
ENTRYPOINT ["/usr/local/bin/spate-entrypoint"]
CMD ["--help"]
