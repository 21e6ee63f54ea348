#!/usr/bin/env bash
# Builds and starts Sneakpeek on http://127.0.0.1:8080 (UI, JsonRPC API, docs).
# In memory by default; set DATABASE_URL to run on PostgreSQL (migrations are applied at start).
# Extra arguments go to the server, e.g. `scripts/run.sh --read-only`; see `--help`.
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
cd "$ROOT"
ensure_build_tools
say "building (release)"
build_site --release
export LEPTOS_SITE_ROOT="$ROOT/target/site" LEPTOS_OUTPUT_NAME=sneakpeek
say "starting on http://${SNEAKPEEK_LISTEN:-127.0.0.1:8080}"
exec "$ROOT/target/release/sneakpeek" "$@"
