#!/usr/bin/env bash
# Runs every test: the style gates (rustfmt, clippy), Rust unit and integration tests (in
# memory and on PostgreSQL), the wasm build check, a short chaos run (faults against 3
# replicas on a private PostgreSQL cluster; it fails when anything acknowledged is lost) and
# the browser tests (Playwright in Debian's Chromium).
#
# PostgreSQL: $DATABASE_URL if set, else postgres://postgres@127.0.0.1:5432/postgres, starting
# the local cluster if it is down. Tests create (and drop) their own databases there.
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
cd "$ROOT"

ensure_postgres() {
  local url="${DATABASE_URL:-postgres://postgres@127.0.0.1:5432/postgres}"
  if ! psql "$url" -qtAc 'select 1' >/dev/null 2>&1 && [ -z "${DATABASE_URL:-}" ] && ls /etc/postgresql >/dev/null 2>&1; then
    say "starting the local PostgreSQL cluster"
    pg_ctlcluster --skip-systemctl-redirect "$(ls /etc/postgresql | head -n1)" main start || true
    for _ in $(seq 1 30); do psql "$url" -qtAc 'select 1' >/dev/null 2>&1 && break; sleep 1; done
  fi
  psql "$url" -qtAc 'select 1' >/dev/null 2>&1 || die "no PostgreSQL at $url.
  The PostgreSQL tests need a server where they may create databases. Either set
  DATABASE_URL=postgres://USER@HOST:PORT/DB, or install and start one locally:
    apt-get install -y postgresql && pg_ctlcluster \$(ls /etc/postgresql) main start"
  # Tests read this one; DATABASE_URL itself would switch the server under test to PostgreSQL.
  export SNEAKPEEK_TEST_DATABASE_URL="$url"
  unset DATABASE_URL
}

ensure_chromium() {
  if [ ! -x "${CHROMIUM_PATH:-/usr/bin/chromium}" ]; then
    say "installing Chromium from Debian"
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null
  fi
  export CHROMIUM_PATH="${CHROMIUM_PATH:-/usr/bin/chromium}"
}

ensure_build_tools
ensure_postgres
ensure_chromium

say "style: rustfmt, and clippy with warnings denied (each crate with each feature set it is built with)"
{ cargo fmt --version && cargo clippy --version; } >/dev/null 2>&1 ||
  die "rustfmt and clippy are required: rustup component add rustfmt clippy"
cargo fmt --all --check
cargo clippy -p engine -- -D warnings
cargo clippy -p engine --features runtime,test-support,openapi --all-targets -- -D warnings
cargo clippy -p app --features ssr --all-targets -- -D warnings
cargo clippy -p server -p bench -p custom-handler --all-targets -- -D warnings
cargo clippy -p frontend --target wasm32-unknown-unknown -- -D warnings

say "Rust tests: engine (in memory and PostgreSQL)"
cargo test -p engine --features runtime
say "Rust tests: server (JsonRPC, access control, docs, OpenAPI, metrics over HTTP)"
cargo test -p server
say "Rust tests: UI (server side)"
cargo test -p app --features ssr
say "the custom handler example builds"
cargo check -p custom-handler

say "wasm build check"
cargo check -p frontend --target wasm32-unknown-unknown

say "building the site for the browser tests"
build_site

say "chaos run: 10 faults against 3 replicas on a private PostgreSQL (a couple of minutes)"
cargo build -p bench
"$ROOT/target/debug/sneakpeek-bench" chaos --faults 10 --seed 1 \
  --binary "$ROOT/target/debug/sneakpeek" --json "$ROOT/target/chaos/short.json"

say "browser tests in Chromium"
(
  cd end2end
  PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1 npm ci --no-audit --no-fund
  SNEAKPEEK_BIN="$ROOT/target/debug/sneakpeek" npx playwright test
)
say "all tests passed"
