#!/usr/bin/env bash
# Side-by-side benchmark of the secrets gate.
#
#   tree     the full default pack over a generated corpus of at least
#            200 MB (shared/bench/gen-secrets-corpus.sh repeats the planted
#            secrets tree), against ripsecrets and detect-secrets on the same
#            tree in the same run; MB/s and ratios.
#   history  history mode over a generated repository with thousands of
#            commits, against the time `git log -p --all` takes to print the
#            same history (the floor for anything that reads every change).
#
# Usage: bench/secrets.sh [tree|history ...]   (default: both)
# Env:   SECRETS_BENCH_DIR (default /tmp/portcullis-secrets-bench; never
#        commit it), SECRETS_BENCH_MB (default 200), HISTORY_COMMITS (3000),
#        RUNS (3), RIPSECRETS, DETECT_SECRETS.
# Needs: hyperfine, python3, git, ripsecrets, detect-secrets
#        (../shared/bench/setup-anchors.sh installs both).
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
SHARED=${PORTCULLIS_SHARED:-$ROOT/../shared}
WORK=${SECRETS_BENCH_DIR:-/tmp/portcullis-secrets-bench}
MB=${SECRETS_BENCH_MB:-200}
COMMITS=${HISTORY_COMMITS:-3000}
RUNS=${RUNS:-3}
RIPSECRETS=${RIPSECRETS:-$HOME/.cargo/bin/ripsecrets}
DETECT_SECRETS=${DETECT_SECRETS:-$HOME/.cache/portcullis-anchors/checkers/bin/detect-secrets}
TREES=${*:-tree history}

command -v hyperfine >/dev/null || { echo "hyperfine is missing (apt-get install -y hyperfine)" >&2; exit 2; }
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$ROOT/target}
(cd "$ROOT" && cargo build --quiet --release --locked -p xtask --bin portcullis \
    && cargo build --quiet --release --locked -p portcullis --example secrets_scan)
OURS="$CARGO_TARGET_DIR/release/examples/secrets_scan"
PORTCULLIS="$CARGO_TARGET_DIR/release/portcullis"
mkdir -p "$WORK"

mean_of() { # hyperfine json, command name
    python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); print([r["mean"] for r in d["results"] if r["command"]==sys.argv[2]][0])' "$1" "$2"
}

bench_tree() {
    [ -x "$RIPSECRETS" ] || { echo "ripsecrets is missing at $RIPSECRETS" >&2; exit 2; }
    [ -x "$DETECT_SECRETS" ] || { echo "detect-secrets is missing at $DETECT_SECRETS" >&2; exit 2; }
    corpus="$WORK/corpus-${MB}mb"
    if [ ! -d "$corpus" ]; then
        bash "$SHARED/bench/gen-secrets-corpus.sh" "$corpus" "$MB" >/dev/null
    fi
    bytes=$(du -sb --apparent-size "$corpus" | cut -f1)
    files=$(find "$corpus" -type f | wc -l)
    echo "== tree: $files files, $((bytes / 1000000)) MB"

    # Warm the page cache once so no tool pays for the first read.
    cat $(find "$corpus" -type f) > /dev/null
    hyperfine --style basic --warmup 1 --runs "$RUNS" -i --export-json "$WORK/tree.json" \
        -n portcullis "$OURS $corpus > $WORK/tree.ours.txt" \
        -n ripsecrets "$RIPSECRETS --strict-ignore $corpus > $WORK/tree.ripsecrets.txt"
    # detect-secrets takes minutes on this size: one run.
    hyperfine --style basic --runs 1 -i --export-json "$WORK/tree-ds.json" \
        -n detect-secrets "cd $corpus && $DETECT_SECRETS scan --all-files . > $WORK/tree.detect-secrets.json"

    python3 - "$bytes" "$(mean_of "$WORK/tree.json" portcullis)" \
        "$(mean_of "$WORK/tree.json" ripsecrets)" "$(mean_of "$WORK/tree-ds.json" detect-secrets)" \
        "$(grep -c . "$WORK/tree.ours.txt")" "$(grep -c . "$WORK/tree.ripsecrets.txt" || true)" <<'PY'
import sys
size, ours, rip, ds = float(sys.argv[1]), *map(float, sys.argv[2:5])
mb = size / 1e6
print(f"portcullis      {ours:8.2f} s  {mb/ours:8.1f} MB/s  ({int(sys.argv[5]) - 1} findings)")
print(f"ripsecrets      {rip:8.2f} s  {mb/rip:8.1f} MB/s  ({sys.argv[6]} lines)")
print(f"detect-secrets  {ds:8.2f} s  {mb/ds:8.1f} MB/s")
print(f"ratio portcullis/ripsecrets     {ours/rip:.3f}  (target < 1)")
print(f"ratio portcullis/detect-secrets {ours/ds:.3f}")
PY
}

bench_history() {
    repo="$WORK/history-$COMMITS"
    if [ ! -d "$repo/.git" ]; then
        rm -rf "$repo" && mkdir -p "$repo"
        git -C "$repo" init -q
        # A fast-import stream: each commit edits one file of the planted
        # secrets tree (so blobs differ commit to commit) and every 500th
        # commit deletes a file, as a leak that was "cleaned up" would.
        python3 - "$SHARED/corpus/secrets" "$COMMITS" <<'PY' | git -C "$repo" fast-import --quiet
import os, sys
src, commits = sys.argv[1], int(sys.argv[2])
files = []
for base, _, names in os.walk(src):
    for name in sorted(names):
        path = os.path.join(base, name)
        files.append((os.path.relpath(path, src), open(path, "rb").read()))
files.sort()
out = sys.stdout.buffer
def data(blob):
    out.write(b"data %d\n" % len(blob) + blob + b"\n")
for n in range(commits):
    out.write(b"commit refs/heads/main\n")
    out.write(b"committer Bench <bench@example.invalid> %d +0000\n" % (1_600_000_000 + n * 60))
    data(b"commit %d" % n)
    if n == 0:
        for path, blob in files:
            out.write(b"M 100644 inline " + path.encode() + b"\n")
            data(blob)
        continue
    path, blob = files[n % len(files)]
    if n % 500 == 0:
        out.write(b"D " + path.encode() + b"\n")
    else:
        out.write(b"M 100644 inline " + path.encode() + b"\n")
        data(blob + b"\n# edit %d\n" % n)
PY
        git -C "$repo" checkout -q main
    fi
    echo "== history: $(git -C "$repo" rev-list --all | wc -l) commits"
    cat > "$WORK/history-policy.toml" <<'TOML'
version = 1
[[stage]]
name = "static"
gates = ["secrets"]
[gates.secrets]
mode = "history"
TOML
    hyperfine --style basic --warmup 1 --runs "$RUNS" -i --export-json "$WORK/history.json" \
        -n portcullis "$PORTCULLIS secrets --root $repo --policy $WORK/history-policy.toml --offline --out $WORK/history-out" \
        -n "git log -p" "git -C $repo log -p --all > /dev/null"
    python3 - "$(mean_of "$WORK/history.json" portcullis)" "$(mean_of "$WORK/history.json" "git log -p")" <<'PY'
import sys
ours, log = map(float, sys.argv[1:3])
print(f"ratio portcullis history / git log -p: {ours/log:.3f}")
PY
}

for what in $TREES; do
    "bench_$what"
done
