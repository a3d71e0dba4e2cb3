# One image for every GatheRing service: `gathering <auth|edge|executor|scheduler|llm-gateway>`.
FROM rust:1.95-bookworm AS build
WORKDIR /src
COPY . .
RUN cargo build --release --locked -p gathering && strip target/release/gathering

FROM debian:bookworm-slim
RUN apt-get update \
    && apt-get install -y --no-install-recommends ca-certificates git python3 \
    && rm -rf /var/lib/apt/lists/* \
    && useradd --system --uid 10001 --home /var/lib/gathering --create-home gathering
COPY --from=build /src/target/release/gathering /usr/local/bin/gathering
USER gathering
WORKDIR /var/lib/gathering
EXPOSE 8000 8001 50051 50052 9101 9102
ENTRYPOINT ["gathering"]
CMD ["up"]
