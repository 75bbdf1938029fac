#!/usr/bin/env bash
# Installs the Debian packages modelgate needs, only when something is missing (idempotent and
# quiet when all is there). R packages come from Debian's r-cran-* (CRAN is not needed).
#   scripts/system-deps.sh            what serving and the tests need
#   scripts/system-deps.sh bench      plus the benchmark tools
set -euo pipefail

packages=(
  # The interpreter the venv is built on: Debian's, which every user can run (a Python under
  # a home directory is closed to the unprivileged user a root gateway runs its workers as).
  python3.11 python3.11-venv python3.11-dev
  r-base-core r-base-dev          # R, and the headers rpy2 builds against
  r-cran-randomforest r-cran-jsonlite
  build-essential                 # compilers for rpy2's extension
  iproute2                        # network namespaces in the remote-worker tests
  chromium                        # the web tester's browser test (driven by playwright)
  wrk                             # the load generator of `modelgate bench` (and its tests)
  # The image test builds and runs the container: podman with runc (crun fails on this kind of
  # machine, see deploy/podman/containers.conf), root networking, and debootstrap for the
  # stand-in base image when no registry can be reached (scripts/stand-in-base.sh).
  podman runc uidmap slirp4netns containernetworking-plugins iptables debootstrap
)
if [[ "${1:-}" == "bench" ]]; then
  packages+=(r-cran-plumber)      # the R contender
fi

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
[[ ${#missing[@]} -eq 0 ]] && exit 0

echo "installing Debian packages: ${missing[*]}"
sudo=""
if [[ $(id -u) -ne 0 ]]; then
  command -v sudo >/dev/null || { echo "need root (or sudo) to install: ${missing[*]}" >&2; exit 1; }
  sudo="sudo"
fi
export DEBIAN_FRONTEND=noninteractive
$sudo apt-get update -qq
$sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
