# modelgate: the gateway and its Python and R worker pools in one image.
#   docker build -t modelgate .           (podman: add --format docker, or HEALTHCHECK is dropped)
#   docker run -p 8000:8000 modelgate                                  # the demo deployment
#   docker run -p 8000:8000 -v $PWD/deploy:/etc/modelgate modelgate    # your config.yaml
# The command serves /etc/modelgate/config.yaml; in the image it links to the demo config.
# Every Python package comes from requirements.lock, hash-checked: the runtime with the r and
# examples extras only (scripts/lock_select.py picks them), never the test, bench or dev tools.

# ---- build: a venv at /opt/modelgate (rpy2 compiles against R's headers here)
FROM python:3.11-slim-bookworm AS build
RUN apt-get update \
 && apt-get install -y --no-install-recommends build-essential r-base-core r-base-dev \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /src
# The dependencies first, from the lock alone, so that a change to our code reuses this layer.
# uv itself is a hashed pin of the lock, installed by pip into a venv of its own. Bytecode is
# compiled now, as the non-root user cannot write it later; the packages' own test suites
# (numpy's, scipy's, pandas', scikit-learn's: over 100 MB) are left out.
COPY requirements.lock pyproject.toml ./
COPY scripts/lock_select.py scripts/
RUN python3 scripts/lock_select.py requirements.lock --packages uv > uv.txt \
 && python3 scripts/lock_select.py requirements.lock --extras r,examples > image.txt \
 && python3 -m venv /opt/tools \
 && /opt/tools/bin/pip install --no-cache-dir --disable-pip-version-check \
      --require-hashes --no-deps -r uv.txt \
 && python3 -m venv --without-pip /opt/modelgate \
 && /opt/tools/bin/uv pip sync --no-cache --compile-bytecode --python /opt/modelgate/bin/python \
      --require-hashes --build-constraints requirements.lock image.txt \
 && find /opt/modelgate/lib -type d -name tests -prune -exec rm -rf {} +
COPY README.md ./
COPY gateway gateway
COPY workers workers
COPY bench bench
RUN /opt/tools/bin/uv pip install --no-cache --compile-bytecode --python /opt/modelgate/bin/python \
      --no-deps --build-constraints requirements.lock . \
 && /opt/modelgate/bin/modelgate --help > /dev/null

# ---- runtime: R and the R packages the example models use, from Debian; no compilers
FROM python:3.11-slim-bookworm
RUN apt-get update \
 && apt-get install -y --no-install-recommends r-base-core r-cran-randomforest r-cran-jsonlite \
 && apt-get clean && rm -rf /var/lib/apt/lists/*
COPY --from=build /opt/modelgate /opt/modelgate
ENV PATH=/opt/modelgate/bin:$PATH
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
