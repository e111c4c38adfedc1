#!/usr/bin/env bash
# Side-by-side benchmark of the sast gate against semgrep: the same five
# rules (bench/rules/semgrep-five.yml here, shared/bench/semgrep-rust-rules.yml
# for semgrep) on the same trees, timed with hyperfine, and the two finding
# sets compared line by line.
#
# Trees (built under $SAST_BENCH_DIR, never committed):
#   repo      this repository at HEAD (git archive);
#   registry  a large Rust codebase: the newest version of each crate in
#             $CRATES copied from the local cargo registry cache (~1.4M lines).
# Both get an empty .semgrepignore and lose their .gitignore files, so that
# semgrep's default ignore list (which skips tests/ and more) does not make it
# scan fewer files than Portcullis: both tools see exactly the same files.
#
# Usage: bench/sast.sh [repo|registry ...]   (default: both)
# Needs: hyperfine, python3, semgrep ($SEMGREP), cargo.
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
WORK=${SAST_BENCH_DIR:-/tmp/portcullis-sast-bench}
SHARED=${PORTCULLIS_SHARED:-$ROOT/../shared}
SEMGREP=${SEMGREP:-/root/.cache/portcullis-anchors/scanners/bin/semgrep}
SEMGREP_RULES=${SEMGREP_RULES:-$SHARED/bench/semgrep-rust-rules.yml}
REGISTRY=${CARGO_HOME:-$HOME/.cargo}/registry/src
RUNS=${RUNS:-5}
CRATES="tokio regex-automata regex-syntax regex serde serde_json syn hyper rustls
gix gix-odb gix-pack gix-config gix-ref gix-protocol gix-transport clap_builder
reqwest axum tower h2 cargo-deny cargo-audit rustsec jiff toml_edit winnow ignore
rayon rayon-core aws-lc-rs cyclonedx-bom jsonschema icu_properties zerovec url
idna hashbrown indexmap bstr chrono proptest insta ast-grep-core ast-grep-config
tree-sitter gimli object tracing-subscriber"
TREES=${*:-repo registry}

export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$ROOT/target}
mkdir -p "$WORK"

# Portcullis: a release build of the library driven by examples/sast_scan.rs,
# which runs only the sast gate and prints `rule<TAB>path<TAB>line`.
(cd "$ROOT" && cargo build --release --locked --example sast_scan)
OURS="$CARGO_TARGET_DIR/release/examples/sast_scan"
POLICY="$ROOT/bench/sast-policy.toml"

prepare_repo() {
    rm -rf "$WORK/repo" && mkdir -p "$WORK/repo"
    (cd "$ROOT" && git archive HEAD) | tar -x -C "$WORK/repo"
}

prepare_registry() {
    [ -d "$WORK/registry" ] && return
    mkdir -p "$WORK/registry"
    for name in $CRATES; do
        # The newest cached version of each crate.
        dir=$(find "$REGISTRY"/*/ -maxdepth 1 -type d -name "$name-[0-9]*" | sort -V | tail -1)
        [ -n "$dir" ] && cp -r "$dir" "$WORK/registry/"
    done
}

for tree in $TREES; do
    "prepare_$tree"
    target="$WORK/$tree"
    find "$target" -name .gitignore -delete
    : > "$target/.semgrepignore"
    files=$(find "$target" -name '*.rs' | wc -l)
    lines=$(find "$target" -name '*.rs' -print0 | xargs -0 cat | wc -l)
    echo "== $tree: $files Rust files, $lines lines"

    # Finding sets, then timings.
    "$OURS" "$target" "$POLICY" > "$WORK/$tree.ours.tsv" 2> "$WORK/$tree.ours.log" || true
    "$SEMGREP" scan --metrics=off --disable-version-check --quiet \
        --config "$SEMGREP_RULES" --json --output "$WORK/$tree.semgrep.json" "$target" || true
    python3 - "$target" "$WORK/$tree.ours.tsv" "$WORK/$tree.semgrep.json" <<'PY'
import json, os, sys
root, ours_path, semgrep_path = sys.argv[1:]
ours = set()
for line in open(ours_path):
    rule, path, start = line.rstrip("\n").split("\t")
    ours.add((rule, path, int(start)))
theirs = set()
report = json.load(open(semgrep_path))
for result in report["results"]:
    rule = result["check_id"].split(".")[-1]
    path = os.path.relpath(result["path"], root)
    theirs.add((rule, path, result["start"]["line"]))
both = ours & theirs
print(f"findings: portcullis {len(ours)}, semgrep {len(theirs)}, both {len(both)}")
print(f"semgrep errors: {len(report.get('errors', []))}")
for label, items in (("only portcullis", ours - theirs), ("only semgrep", theirs - ours)):
    by_rule = {}
    for rule, path, line in sorted(items):
        by_rule.setdefault(rule, []).append(f"{path}:{line}")
    for rule, places in sorted(by_rule.items()):
        print(f"  {label} {rule}: {len(places)}  e.g. {', '.join(places[:3])}")
PY

    hyperfine --warmup 1 --runs "$RUNS" --ignore-failure \
        --export-json "$WORK/$tree.hyperfine.json" \
        -n portcullis "$OURS $target $POLICY > /dev/null 2>&1" \
        -n semgrep "$SEMGREP scan --metrics=off --disable-version-check --quiet --config $SEMGREP_RULES --json $target > /dev/null 2>&1"
    python3 - "$WORK/$tree.hyperfine.json" <<'PY'
import json, sys
results = {r["command"]: r for r in json.load(open(sys.argv[1]))["results"]}
ours, theirs = results["portcullis"]["mean"], results["semgrep"]["mean"]
print(f"ratio: semgrep / portcullis = {theirs / ours:.1f}x  ({theirs:.2f}s / {ours:.3f}s)")
PY
done
