#!/usr/bin/env bash
# Builds target/generate-rpm/pez-<version>-1.x86_64.rpm from the release
# binary with cargo-generate-rpm (what `make rpm` runs after
# `cargo build --release`). The package's contents, scriptlets and
# dependencies are in Cargo.toml's [package.metadata.generate-rpm]; the
# version comes from packaging/version.sh. Prints the RPM's path.
set -euo pipefail
cd "$(dirname "$0")/.."
CARGO=${CARGO:-cargo}

[ -x target/release/pez ] || {
    echo "build-rpm: target/release/pez is missing; run cargo build --release first" >&2
    exit 1
}
$CARGO generate-rpm --version >/dev/null 2>&1 || {
    echo "build-rpm: cargo-generate-rpm is missing; cargo install --locked cargo-generate-rpm" >&2
    exit 1
}
# rpm's own dependency generator (rpmbuild's): the binary's sonames and
# symbol versions, e.g. libpq.so.5()(64bit), libc.so.6(GLIBC_2.34)(64bit).
find_requires=/usr/lib/rpm/find-requires
[ -x "$find_requires" ] || {
    echo "build-rpm: $find_requires is missing; install rpm (Debian: apt-get install rpm)" >&2
    exit 1
}
version=$(packaging/version.sh)

# The packaged binary is the release binary without its debug line tables
# (function names stay, for backtraces); the cargo artifact is left as built.
mkdir -p target/rpm-stage target/generate-rpm
strip --strip-debug -o target/rpm-stage/pez target/release/pez

# One RPM in the output directory: the one just built.
rm -f target/generate-rpm/pez-*.rpm
$CARGO generate-rpm --payload-compress gzip --auto-req "$find_requires" \
    --set-metadata "version = \"$version\"" -o target/generate-rpm/ >&2
rpm_file="target/generate-rpm/pez-$version-1.x86_64.rpm"
[ -f "$rpm_file" ] || {
    echo "build-rpm: cargo generate-rpm did not write $rpm_file" >&2
    exit 1
}
echo "$rpm_file"
