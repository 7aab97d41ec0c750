#!/usr/bin/env bash
# The one test command: formatting, lints-as-errors build, and every test of the workspace.
# Tests that read ../shared/pcaps skip with a message when that folder is absent.
set -euo pipefail
cd "$(dirname "$0")/.."
cargo fmt --all -- --check
RUSTFLAGS="${RUSTFLAGS:-} -D warnings" cargo test --workspace --locked --all-targets
