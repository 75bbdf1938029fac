# modelgate: the gateway and its Python and R worker pools in one image.
#   docker build -t modelgate .
#   docker run -p 8000:8000 modelgate                                  # the demo deployment
#   docker run -p 8000:8000 -v $PWD/deploy:/etc/modelgate modelgate    # your config.yaml
# The command serves /etc/modelgate/config.yaml; in the image it links to the demo config.

# ---- build: wheels for modelgate and its dependencies (rpy2 compiles against R's headers)
FROM python:3.11-slim-bookworm AS build
RUN apt-get update \
 && apt-get install -y --no-install-recommends build-essential r-base-core r-base-dev \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY pyproject.toml README.md ./
COPY gateway gateway
COPY workers workers
COPY bench bench
RUN pip wheel --no-cache-dir --wheel-dir /wheels '.[r,examples]'

# ---- runtime: R and the R packages the example models use, from Debian
FROM python:3.11-slim-bookworm
RUN apt-get update \
 && apt-get install -y --no-install-recommends r-base-core r-cran-randomforest r-cran-jsonlite \
 && rm -rf /var/lib/apt/lists/*
COPY --from=build /wheels /wheels
RUN pip install --no-cache-dir --no-index --find-links /wheels 'modelgate[r,examples]==0.1.0' \
 && rm -rf /wheels
RUN useradd --system --uid 10001 --home-dir /srv/modelgate modelgate
WORKDIR /srv/modelgate
COPY configs configs
COPY examples examples
# The demo's models are trained at build time, as `make demo` does on a machine.
WORKDIR /srv/modelgate/examples/wine
RUN python train.py > /dev/null && Rscript train.R > /dev/null
WORKDIR /srv/modelgate
RUN mkdir -p /etc/modelgate \
 && ln -s /srv/modelgate/configs/demo.yaml /etc/modelgate/config.yaml \
 && chown -R 10001 /srv/modelgate/configs
USER 10001
EXPOSE 8000
HEALTHCHECK --interval=10s --timeout=3s --start-period=60s --retries=3 \
  CMD ["python", "-c", "import urllib.request as u; u.urlopen('http://127.0.0.1:8000/healthz', timeout=2)"]
STOPSIGNAL SIGTERM
CMD ["modelgate", "serve", "/etc/modelgate/config.yaml", "--listen", "0.0.0.0:8000"]
