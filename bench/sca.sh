#!/usr/bin/env bash
# Side-by-side benchmark of the sca gate against `cargo audit`, on every
# lockfile of ../shared/corpus/lockfiles, with the same advisory database
# and no fetch. Prints one ratio (ours / cargo-audit, mean wall time) per
# lockfile and their geometric mean; exits 1 if any ratio is above the
# target (0.5 unless SCA_BENCH_TARGET says otherwise).
#
#   bench/sca.sh                      # builds xtask in release first
#   SCA_BENCH_RUNS=30 bench/sca.sh
#
# Needs hyperfine, python3 and cargo-audit (~/.cargo/bin/cargo-audit).
# Each corpus case is copied to a temp dir first: the shared copy is
# read-only and neither tool may write into it.
set -euo pipefail

here=$(cd "$(dirname "$0")/.." && pwd)
shared=${PORTCULLIS_SHARED:-$here/../shared}
db=${PORTCULLIS_ADVISORY_DB:-$shared/advisory-db}
runs=${SCA_BENCH_RUNS:-20}
target_ratio=${SCA_BENCH_TARGET:-0.5}
audit=${CARGO_AUDIT:-$HOME/.cargo/bin/cargo-audit}
target_dir=${CARGO_TARGET_DIR:-$here/target}

command -v hyperfine >/dev/null || { echo "hyperfine is missing (apt-get install -y hyperfine)" >&2; exit 2; }
[ -x "$audit" ] || { echo "cargo-audit is missing at $audit" >&2; exit 2; }
[ -d "$db/crates" ] || { echo "no advisory database at $db" >&2; exit 2; }

(cd "$here" && cargo build --quiet --release -p xtask --bin portcullis)
xtask=$target_dir/release/portcullis

work=$(mktemp -d /tmp/portcullis-bench-sca.XXXXXX)
trap 'rm -rf "$work"' EXIT

# The advisory check alone, as cargo audit does it: no licence or source
# policy (they run cargo metadata), yanked crates skipped offline.
cat > "$work/policy.toml" <<'TOML'
version = 1
[[stage]]
name = "sca"
gates = ["sca"]
[gates.sca]
yanked = false
TOML

printf '%-16s %10s %10s %7s\n' lockfile "ours (ms)" "audit (ms)" ratio
results=()
for case_dir in "$shared"/corpus/lockfiles/*/; do
    name=$(basename "$case_dir")
    cp -r "$case_dir" "$work/$name"
    chmod -R u+w "$work/$name"
    lock="$work/$name/Cargo.lock"
    hyperfine --style none --warmup 3 --runs "$runs" -i \
        --export-json "$work/$name.json" \
        -n ours "$xtask sca --root $work/$name --policy $work/policy.toml --advisory-db $db --offline --out $work/out-$name" \
        -n cargo-audit "$audit audit --no-fetch --db $db -f $lock --quiet" \
        >/dev/null
    line=$(python3 - "$work/$name.json" "$name" <<'PY'
import json, sys
data = json.load(open(sys.argv[1]))
mean = {r["command"]: r["mean"] for r in data["results"]}
ours, audit = mean["ours"], mean["cargo-audit"]
print(f"{sys.argv[2]:<16} {ours*1000:10.1f} {audit*1000:10.1f} {ours/audit:7.3f}")
PY
)
    echo "$line"
    results+=("$(echo "$line" | awk '{print $4}')")
done

python3 - "$target_ratio" "${results[@]}" <<'PY'
import math, sys
target = float(sys.argv[1])
ratios = [float(r) for r in sys.argv[2:]]
geo = math.exp(sum(math.log(r) for r in ratios) / len(ratios))
print(f"geometric mean ratio: {geo:.3f} (target <= {target}); worst: {max(ratios):.3f}")
sys.exit(0 if max(ratios) <= target else 1)
PY
