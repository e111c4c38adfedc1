#!/usr/bin/env bash
# Times the sbom gate against cargo-cyclonedx on the same workspace with
# hyperfine and prints the ratio of mean times (ours / theirs; <= 1.0 means
# we are at least as fast).
#
# usage: bench/sbom.sh [WORKSPACE_DIR ...]
#   default: this repository and ../shared/corpus/lockfiles/zizmor-head
# env:   CARGO_TARGET_DIR (where the release xtask is built), RUNS (default 20)
#
# Both tools run on the same private copy of each workspace (cargo-cyclonedx
# writes its SBOMs next to each Cargo.toml), with the same configuration:
# every platform (`--target all`, our default), default features, CycloneDX
# 1.5 JSON. Both run `cargo metadata`; run once beforehand so that crates are
# in the local cache and neither pays for downloads.
set -euo pipefail

repo=$(cd "$(dirname "$0")/.." && pwd)
shared=${PORTCULLIS_SHARED:-$repo/../shared}
runs=${RUNS:-20}
target_dir=${CARGO_TARGET_DIR:-$repo/target}
xtask=$target_dir/release/portcullis

command -v hyperfine >/dev/null || { echo "hyperfine is not installed (apt-get install -y hyperfine)" >&2; exit 2; }
cargo cyclonedx --version >/dev/null 2>&1 || { echo "cargo-cyclonedx is not installed (cargo install cargo-cyclonedx)" >&2; exit 2; }

if [ $# -eq 0 ]; then
  set -- "$repo" "$shared/corpus/lockfiles/zizmor-head"
fi

(cd "$repo" && cargo build --quiet --release --locked --package xtask --bin portcullis)
echo "ours:   $xtask ($("$xtask" --version 2>/dev/null || echo unknown version))"
echo "anchor: $(cargo cyclonedx --version)"

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

for src in "$@"; do
  name=$(basename "$(cd "$src" && pwd)")
  ws=$work/$name
  mkdir -p "$ws"
  if [ -d "$src/.git" ] || [ -f "$src/.git" ]; then
    # A checkout: copy what git tracks (no target/, no local build output).
    (cd "$src" && git ls-files -z --cached --others --exclude-standard) \
      | (cd "$src" && xargs -0 cp --parents -t "$ws")
  else
    cp -r "$src/." "$ws/"
  fi
  chmod -R u+w "$ws"
  (cd "$ws" && cargo metadata --format-version 1 --locked >/dev/null)

  echo
  echo "== $name"
  hyperfine --style basic --warmup 3 --runs "$runs" --export-json "$work/$name.json" \
    -n portcullis "$xtask sbom --root $ws --out $work/out-$name --quiet" \
    -n cargo-cyclonedx "cargo cyclonedx --quiet --format json --spec-version 1.5 --target all --manifest-path $ws/Cargo.toml"
  jq -r '
    (.results[] | select(.command == "portcullis") | .mean) as $ours
    | (.results[] | select(.command == "cargo-cyclonedx") | .mean) as $theirs
    | "ratio sbom / cargo-cyclonedx on \($ARGS.positional[0]): \($ours / $theirs * 1000 | round / 1000) (\($ours * 1000 | round) ms vs \($theirs * 1000 | round) ms)"' \
    --args "$name" <"$work/$name.json"
done
