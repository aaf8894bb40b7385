#!/usr/bin/env bash
# Prints the RPM Version of PEZ: Cargo.toml's version, and, when built from a
# git checkout, what `git describe` says about it (the original PEZ took its
# version from git tags). Versions sort the way rpm and yum upgrade:
#
#   at the tag v0.1.0, clean tree       0.1.0
#   3 commits after the tag v0.1.0      0.1.0^3.g1a2b3c4     (after 0.1.0)
#   no tag v0.1.0 yet, 12 commits       0.1.0~git12.g1a2b3c4 (before 0.1.0)
#   uncommitted changes                 ... .dirty appended
#
# (^ and ~ are rpm's snapshot markers, understood since rpm 4.15; Amazon
# Linux 2023 has 4.16.) Outside git it is Cargo.toml's version alone.
set -euo pipefail
cd "$(dirname "$0")/.."

base=$(awk '
    /^\[/ { in_package = ($0 == "[package]") }
    in_package && /^version *= *"/ { gsub(/^version *= *"|".*$/, ""); print; exit }
' Cargo.toml)
if ! [[ $base =~ ^[0-9]+(\.[0-9]+)*$ ]]; then
    echo "version.sh: no plain version (like 0.1.0) in Cargo.toml's [package]: \"$base\"" >&2
    exit 1
fi

if ! git rev-parse --is-inside-work-tree >/dev/null 2>&1; then
    echo "$base"
    exit 0
fi

hash=$(git rev-parse --short=7 HEAD)
dirty=""
git diff --quiet HEAD -- 2>/dev/null || dirty=".dirty"

if described=$(git describe --tags --long --match "v$base" 2>/dev/null); then
    # v0.1.0-3-g1a2b3c4: commits since the tag.
    since=${described#"v$base-"}
    since=${since%%-*}
    if [ "$since" = 0 ] && [ -z "$dirty" ]; then
        echo "$base"
    else
        echo "$base^$since.g$hash$dirty"
    fi
else
    echo "$base~git$(git rev-list --count HEAD).g$hash$dirty"
fi
