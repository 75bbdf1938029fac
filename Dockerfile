# modelgate: the gateway and its Python and R worker pools in one image.
# Build: docker build -t modelgate .   Run: docker run -p 8000:8000 -v $PWD/configs:/etc/modelgate modelgate
# (mount a directory holding config.yaml and the scripts/models it names).

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
RUN pip install --no-cache-dir --no-index --find-links /wheels 'modelgate[r,examples]' \
 && rm -rf /wheels
RUN useradd --system --uid 10001 --home-dir /srv/modelgate --create-home modelgate
WORKDIR /srv/modelgate
USER modelgate
EXPOSE 8000
CMD ["modelgate", "serve", "/etc/modelgate/config.yaml", "--listen", "0.0.0.0:8000"]
