# The bench image: the binary and config/ on a slim Debian, run as a non-root user.
# Not built on the development machine (no docker there); build it where docker runs:
#   docker build -t registry.example/bench:0.1.0 .
#   docker push registry.example/bench:0.1.0
#   bench k8s render config.yaml --image registry.example/bench:0.1.0 --shards 8 --out k8s/
# docs/KUBERNETES.md has the whole path.

# --- build: the release binary, from the committed Cargo.lock --------------------------------
FROM rust:1.90-slim-bookworm AS build
WORKDIR /src
COPY Cargo.toml Cargo.lock ./
COPY crates crates
COPY tests tests
RUN cargo build --release --locked --bin bench \
 && cp target/release/bench /usr/local/bin/bench

# --- run: glibc (the binary links it), CA roots for https endpoints, sh and date for the Jobs --
FROM debian:bookworm-slim
RUN apt-get update \
 && apt-get install -y --no-install-recommends ca-certificates \
 && rm -rf /var/lib/apt/lists/* \
 && groupadd --gid 10001 bench \
 && useradd --uid 10001 --gid 10001 --home-dir /home/bench --create-home --shell /usr/sbin/nologin bench
COPY --from=build /usr/local/bin/bench /usr/local/bin/bench
COPY --chown=10001:10001 config /home/bench/config
USER 10001:10001
WORKDIR /home/bench
ENTRYPOINT ["bench"]
CMD ["--help"]
