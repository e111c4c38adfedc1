#!/usr/bin/env bash
# Lists the (name, version) pairs cargo-cyclonedx puts in the SBOMs of one
# workspace: the union over its per-member SBOMs of `components` and
# `metadata.component`, one "name version" a line, sorted. This is the
# anchor side of the component-set comparison held by
# tests/integration/sbom.rs (tests/fixtures/sbom/anchor/*.txt).
#
# usage: bench/sbom-anchor-components.sh WORKSPACE_DIR [TARGET]
#   TARGET defaults to `all` (every platform), as the sbom gate does.
# The workspace is copied to a temp dir first: cargo-cyclonedx writes its
# SBOMs next to each manifest, and the input must stay untouched.
set -euo pipefail
src=${1:?usage: $0 WORKSPACE_DIR [TARGET]}
target=${2:-all}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cp -r "$src/." "$work/"
chmod -R u+w "$work"
(cd "$work" && cargo cyclonedx --quiet --format json --spec-version 1.5 --target "$target" >/dev/null)
find "$work" -name '*.cdx.json' -not -path '*/target/*' -print0 \
  | xargs -0 jq -r '(.components // [])[], .metadata.component | "\(.name) \(.version)"' \
  | LC_ALL=C sort -u
