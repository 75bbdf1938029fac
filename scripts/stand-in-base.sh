#!/usr/bin/env bash
# Builds a stand-in for the Dockerfile's base image when no image registry can be reached.
#
#   scripts/stand-in-base.sh [IMAGE]     (default: docker.io/library/python:3.11-slim-bookworm)
#
# The Dockerfile starts FROM python:3.11-slim-bookworm. Machines without access to an image
# registry (CI here) cannot pull it, so this makes an image of the same Debian release with the
# same Python minor version and tags it with that name; the build then uses it with
# --pull=never. It is a stand-in, not a copy: Debian's python3 in /usr/bin instead of a
# source-built one in /usr/local, and no `python`/`pip` on PATH (the Dockerfile needs neither).
#
# What it holds: `debootstrap --variant=minbase bookworm` from the Debian archive this machine's
# apt sources name, python3 with venv and headers, the same apt sources, and the machine's
# locally added CA certificates trusted (an HTTPS-intercepting proxy's, say), with pip and uv
# told to use the system bundle (uv reads SSL_CERT_FILE; UV_SYSTEM_CERTS=1 is the newer
# spelling of UV_NATIVE_TLS=1, which uv now calls deprecated).
#
# Idempotent: an existing image of that name is kept. The root tree is made under a temporary
# directory in /var/tmp (or $MODELGATE_STAND_IN_TMP) and removed afterwards, whatever happens.
# Needs root (debootstrap); prints nothing when the image exists, a log tail when it fails.
set -euo pipefail

image="${1:-docker.io/library/python:3.11-slim-bookworm}"
suite=bookworm

if podman image exists "$image"; then
  exit 0
fi
if [[ $(id -u) -ne 0 ]]; then
  echo "stand-in-base: debootstrap needs root" >&2
  exit 1
fi
for tool in debootstrap podman tar; do
  command -v "$tool" >/dev/null || { echo "stand-in-base: $tool is missing (scripts/system-deps.sh)" >&2; exit 1; }
done

# The Debian archive (and the security archive, when listed) from this machine's apt sources,
# written back as one deb822 file for the image. Both formats: deb822 *.sources and one-line.
sources=$(python3 - "$suite" <<'EOF'
import glob, sys
suite = sys.argv[1]
found = []  # (uri, [suites]) in the order the machine lists them
for path in sorted(glob.glob("/etc/apt/sources.list.d/*.sources")):
    for stanza in open(path).read().split("\n\n"):
        fields = {}
        for line in stanza.splitlines():
            if ":" in line and not line.startswith(("#", " ")):
                key, value = line.split(":", 1)
                fields[key.strip().lower()] = value.split()
        if "deb" in fields.get("types", []) and fields.get("enabled", ["yes"])[0] != "no":
            for uri in fields.get("uris", []):
                found.append((uri, fields.get("suites", [])))
for path in ["/etc/apt/sources.list", *sorted(glob.glob("/etc/apt/sources.list.d/*.list"))]:
    try:
        lines = open(path).read().splitlines()
    except OSError:
        continue
    for line in lines:
        words = [w for w in line.split("#", 1)[0].split() if not w.startswith("[")]
        if len(words) >= 3 and words[0] == "deb":
            found.append((words[1], [words[2]]))
for uri, suites in found:
    suites = [s for s in suites if s == suite or s.startswith(suite + "-")]
    if suites:
        print(uri.rstrip("/"), " ".join(suites))
EOF
)
mirror=$(awk -v s="$suite" '{for (i = 2; i <= NF; i++) if ($i == s) {print $1; exit}}' <<<"$sources")
if [[ -z "$mirror" ]]; then
  echo "stand-in-base: no Debian $suite archive in this machine's apt sources" >&2
  exit 1
fi

tmp_parent="${MODELGATE_STAND_IN_TMP:-/var/tmp}"
work=$(mktemp -d "$tmp_parent/modelgate-stand-in.XXXXXX")
root="$work/root"
# debootstrap mounts /proc and /sys inside the tree and may leave them mounted when it fails:
# unmount whatever is under it, deepest first, and never let rm cross into another file system.
cleanup() {
  awk -v r="$root/" 'index($2, r) == 1 {print $2}' /proc/mounts | sort -r |
    while read -r m; do umount -l "$m" || true; done
  rm -rf --one-file-system "$work"
}
trap cleanup EXIT
log="$work/debootstrap.log"

echo "building a stand-in base image $image (debootstrap $suite; its log is shown if it fails)"
if ! debootstrap --variant=minbase --include=python3,python3-venv,python3-dev,ca-certificates \
     "$suite" "$root" "$mirror" >"$log" 2>&1; then
  tail -40 "$log" >&2
  [[ -f "$root/debootstrap/debootstrap.log" ]] && tail -40 "$root/debootstrap/debootstrap.log" >&2
  exit 1
fi

# The same archives as the machine (security updates included), in deb822 form.
rm -f "$root/etc/apt/sources.list"
while read -r uri rest; do
  printf 'Types: deb\nURIs: %s\nSuites: %s\nComponents: main\nSigned-By: %s\n\n' \
    "$uri" "$rest" /usr/share/keyrings/debian-archive-keyring.gpg
done <<<"$sources" >"$root/etc/apt/sources.list.d/debian.sources"

# The machine's locally added CAs, trusted in the image as on the machine.
if compgen -G "/usr/local/share/ca-certificates/*" >/dev/null; then
  cp -r /usr/local/share/ca-certificates/. "$root/usr/local/share/ca-certificates/"
fi
chroot "$root" update-ca-certificates >/dev/null 2>&1

# As small as the real slim image keeps itself: no package lists, caches or docs.
chroot "$root" apt-get clean
rm -rf "$root"/var/lib/apt/lists/* "$root"/var/cache/apt/*.bin "$root"/usr/share/doc/* \
       "$root"/usr/share/man/* "$root"/usr/share/info/* "$root"/debootstrap
# Like Debian's slim images (which the real base is made from): packages installed later leave
# out their documentation, apt keeps no downloaded .debs, and no service starts during installs.
cat >"$root/etc/apt/apt.conf.d/docker-clean" <<'EOF_APT'
DPkg::Post-Invoke { "rm -f /var/cache/apt/archives/*.deb /var/cache/apt/archives/partial/*.deb /var/cache/apt/*.bin || true"; };
APT::Update::Post-Invoke { "rm -f /var/cache/apt/archives/*.deb /var/cache/apt/archives/partial/*.deb /var/cache/apt/*.bin || true"; };
Dir::Cache::pkgcache "";
Dir::Cache::srcpkgcache "";
EOF_APT
mkdir -p "$root/etc/dpkg/dpkg.cfg.d"
cat >"$root/etc/dpkg/dpkg.cfg.d/docker" <<'EOF_DPKG'
path-exclude /usr/share/doc/*
path-include /usr/share/doc/*/copyright
path-exclude /usr/share/man/*
path-exclude /usr/share/groff/*
path-exclude /usr/share/info/*
path-exclude /usr/share/lintian/*
path-exclude /usr/share/linda/*
path-exclude /usr/share/locale/*
EOF_DPKG
printf '#!/bin/sh\nexit 101\n' >"$root/usr/sbin/policy-rc.d"
chmod 755 "$root/usr/sbin/policy-rc.d"

bundle=/etc/ssl/certs/ca-certificates.crt
tar --numeric-owner --xattrs -C "$root" -c . | podman import \
  --change "ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin" \
  --change "ENV LANG=C.UTF-8" \
  --change "ENV SSL_CERT_FILE=$bundle" \
  --change "ENV PIP_CERT=$bundle" \
  --change "ENV REQUESTS_CA_BUNDLE=$bundle" \
  --change "ENV UV_SYSTEM_CERTS=1" \
  --change 'CMD ["python3"]' \
  --message "stand-in for $image: debootstrap $suite with python3 (scripts/stand-in-base.sh)" \
  - "$image" >>"$log" 2>&1 || { tail -20 "$log" >&2; exit 1; }
echo "stand-in base image ready: $image"
