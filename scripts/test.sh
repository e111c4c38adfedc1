#!/usr/bin/env bash
# The test suite: every crate's unit and integration tests, then the doc
# tests. Uses cargo-nextest when installed (faster, one process per test),
# else cargo test. Reads the shared corpora from ../shared.
set -euo pipefail
cd "$(dirname "$0")/.."
export PORTCULLIS_ADVISORY_DB="${PORTCULLIS_ADVISORY_DB:-$(cd .. && pwd)/shared/advisory-db}"
if command -v cargo-nextest >/dev/null 2>&1; then
  cargo nextest run --workspace --locked --no-fail-fast "$@"
else
  cargo test --workspace --locked --no-fail-fast "$@"
fi
cargo test --workspace --locked --doc
