#!/usr/bin/env bash
# Installs what strata needs to build, test and run its demo on Debian (run as root).
# Idempotent: packages already present are left alone.
set -euo pipefail

packages=(
  busybox-static   # the demo's base image and the test images
  runc             # the OCI runtime containers run through
  attr             # getfattr, to show opaque-directory xattrs in the demo
  skopeo umoci     # interop tests read and write OCI layouts with them (skipped when absent)
  docker.io        # the docker CLI, driven against `strata daemon` by the API tests
  python3-docker   # docker-py, likewise (it indexes fields the docker CLI does not need)
  docker-registry  # distribution 2.8: crates/distribution's tests run it on a free port
  apache2-utils    # htpasswd, for those tests' basic-auth registry
  openssl          # the test CA and certificates of the TLS registry tests
  build-essential  # cc for the bundled SQLite and zstd
  pkg-config
  tar gzip zstd    # GNU tar is the speed reference in bench/
  ca-certificates curl
)
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "setup: installing ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  # Packages install here without starting their services (docker.io's dockerd): strata
  # needs only the docker client, and the benches start their own reference dockerd.
  policy=/usr/sbin/policy-rc.d
  own_policy=0
  if [ ! -e "$policy" ]; then
    printf '#!/bin/sh\nexit 101\n' >"$policy" && chmod +x "$policy" && own_policy=1
  fi
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  if [ $own_policy = 1 ]; then rm -f "$policy"; fi
fi

# Rust: Debian's own rustc is too old for our dependencies, so use rustup's stable toolchain.
if ! command -v cargo >/dev/null 2>&1; then
  if [ -x "$HOME/.cargo/bin/cargo" ]; then
    echo "setup: cargo is in ~/.cargo/bin; add it to PATH (source ~/.cargo/env)"
  else
    echo "setup: installing Rust with rustup"
    curl --proto '=https' --tlsv1.2 -sSf https://sh.rustup.rs | sh -s -- -y --profile minimal
  fi
fi
