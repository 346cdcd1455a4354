# The streamtrain services in one image: streamtrain (produce, inspect, broker, ...),
# streamtrain-ingest, streamtrain-trainer and streamtrain-replica in /usr/local/bin.
# docker-compose.yml picks the executable per service with `entrypoint`.
#
#   docker build -t streamtrain .
#   docker run --rm --entrypoint streamtrain-ingest streamtrain --help

# Build: the same Debian packages as a development machine (scripts/setup.sh is the one
# list), the same build script (Release, warnings as errors), without benchmarks and tests.
FROM debian:bookworm AS build
ENV DEBIAN_FRONTEND=noninteractive \
    CCACHE_DISABLE=1
WORKDIR /src
# Only setup.sh first, so that this layer stays cached until the package list changes.
COPY scripts/setup.sh scripts/setup.sh
RUN scripts/setup.sh && rm -rf /var/lib/apt/lists/*
COPY . .
# build.sh configures with its own flags; options it does not pass keep the values cached
# by this first configure.
RUN cmake -S . -B /build -G Ninja -DCMAKE_BUILD_TYPE=Release \
      -DSTREAMTRAIN_BUILD_BENCH=OFF -DSTREAMTRAIN_BUILD_TESTS=OFF \
 && BUILD_DIR=/build scripts/build.sh

# Run: only the runtime libraries of what the executables link (readelf -d: LibTorch,
# librdkafka, LMDB, cpp-httplib, prometheus-cpp, spdlog/fmt, OpenSSL, zlib; apt brings what
# those need), the Fashion-MNIST data for `streamtrain produce`, curl for health checks.
FROM debian:bookworm-slim
ENV DEBIAN_FRONTEND=noninteractive
RUN apt-get update \
 && apt-get install -y --no-install-recommends \
      libtorch1.13 libblas3 liblapack3 \
      librdkafka1 librdkafka++1 liblmdb0 libcpp-httplib0.11 libprometheus-cpp-core1.0 \
      libspdlog1.10 libfmt9 libssl3 zlib1g libzstd1 \
      dataset-fashion-mnist curl \
 && rm -rf /var/lib/apt/lists/*
COPY --from=build /build/bin/ /usr/local/bin/
# Fail the image build, not the first container, when a linked library has no package above.
RUN if ldd /usr/local/bin/* | grep -F "not found"; then \
      echo "the runtime stage lacks the libraries above: add their packages" >&2; exit 1; \
    fi \
 && for exe in /usr/local/bin/*; do "$exe" --help >/dev/null; done

# State lives in volumes mounted here (docker-compose.yml): the historical store and the
# trainer's checkpoints. A new named volume takes this ownership.
RUN useradd --system --uid 10001 --user-group --home-dir /var/lib/streamtrain \
      --shell /usr/sbin/nologin streamtrain \
 && install -d -o streamtrain -g streamtrain -m 0750 \
      /var/lib/streamtrain /var/lib/streamtrain/store /var/lib/streamtrain/checkpoints
USER streamtrain
WORKDIR /var/lib/streamtrain

# replica HTTP, ingest metrics, trainer metrics
EXPOSE 8080 9101 9102
ENTRYPOINT ["streamtrain"]
CMD ["--help"]
