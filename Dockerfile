# One image for every GatheRing service: `gathering <auth|edge|executor|scheduler|llm-gateway>`.
FROM rust:1.95-bookworm AS build
WORKDIR /src
COPY . .
RUN cargo build --release --locked -p gathering && strip target/release/gathering

FROM debian:bookworm-slim
RUN apt-get update \
    && apt-get install -y --no-install-recommends ca-certificates git python3 python3-venv \
    && rm -rf /var/lib/apt/lists/* \
    && python3 -m venv /opt/pylsp \
    && /opt/pylsp/bin/pip install --no-cache-dir "python-lsp-server[pyflakes,pycodestyle]==1.13.1" \
    && useradd --system --uid 10001 --home /var/lib/gathering --create-home gathering
COPY --from=build /src/target/release/gathering /usr/local/bin/gathering
# The Python language server of /lsp (docs/workspace.md).
ENV LSP_PYTHON_COMMAND=/opt/pylsp/bin/pylsp
USER gathering
WORKDIR /var/lib/gathering
EXPOSE 8000 8001 50051 50052 9101 9102
ENTRYPOINT ["gathering"]
CMD ["up"]
