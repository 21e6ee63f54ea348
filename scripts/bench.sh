#!/usr/bin/env bash
# Runs the benchmarks side by side with their baselines and prints one table (see the
# README's "Benchmarks"). It installs what it needs on a fresh machine: the build tools, a
# Python virtualenv with the original Sneakpeek 0.1.7 (PyPI), graphile-worker (npm, from
# tools/bench/package-lock.json) and pgbench (Debian). Then it builds in release mode, runs
# every workload, writes target/bench/results.json and results.md, and puts the table into
# the README (full runs only). About 25 minutes on 2 cores once built, 10 of them the chaos
# run's 100 faults against 3 replicas on a private PostgreSQL cluster (`initdb` of the
# installed server; details in target/bench/chaos.json, logs in target/chaos/).
#
# PostgreSQL: $SNEAKPEEK_BENCH_DATABASE_URL, else postgres://postgres@127.0.0.1:5432/postgres
# (the local cluster is started if it is down). Each workload gets a fresh database there.
# Extra arguments go to the bench binary, e.g. `scripts/bench.sh --only queue,pickup`.
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
cd "$ROOT"
BENCH_DIR="$ROOT/target/bench"
export SNEAKPEEK_BENCH_DATABASE_URL="${SNEAKPEEK_BENCH_DATABASE_URL:-postgres://postgres@127.0.0.1:5432/postgres}"

apt_install() {
  say "installing $* from Debian"
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@" >/dev/null
}

ensure_postgres() {
  local url="$SNEAKPEEK_BENCH_DATABASE_URL"
  if ! psql "$url" -qtAc 'select 1' >/dev/null 2>&1 && ls /etc/postgresql >/dev/null 2>&1; then
    say "starting the local PostgreSQL cluster"
    pg_ctlcluster --skip-systemctl-redirect "$(ls /etc/postgresql | head -n1)" main start || true
    for _ in $(seq 1 30); do psql "$url" -qtAc 'select 1' >/dev/null 2>&1 && break; sleep 1; done
  fi
  psql "$url" -qtAc 'select 1' >/dev/null 2>&1 || die "no PostgreSQL at $url: set SNEAKPEEK_BENCH_DATABASE_URL, or
    apt-get install -y postgresql && pg_ctlcluster \$(ls /etc/postgresql) main start"
}

# pgbench ships with Debian's PostgreSQL server package, outside PATH.
find_pgbench() {
  local found
  found="$(command -v pgbench || ls /usr/lib/postgresql/*/bin/pgbench 2>/dev/null | tail -n1 || true)"
  if [ -z "$found" ]; then
    apt_install postgresql
    found="$(ls /usr/lib/postgresql/*/bin/pgbench | tail -n1)"
  fi
  echo "$found"
}

# The original Sneakpeek 0.1.7 with the versions it was measured with (pip freeze of a
# `pip install sneakpeek-py==0.1.7`).
ensure_original() {
  if [ ! -x "$BENCH_DIR/venv/bin/python" ]; then
    python3 -m venv --help >/dev/null 2>&1 || apt_install python3-venv
    say "creating a Python virtualenv with sneakpeek-py 0.1.7"
    python3 -m venv "$BENCH_DIR/venv"
  fi
  if ! "$BENCH_DIR/venv/bin/pip" freeze 2>/dev/null | grep -qx 'sneakpeek-py==0.1.7'; then
    "$BENCH_DIR/venv/bin/pip" install -q -r tools/bench/requirements.txt
  fi
}

ensure_graphile() {
  if [ ! -d tools/bench/node_modules/graphile-worker ]; then
    say "installing graphile-worker (npm)"
    (cd tools/bench && npm ci --no-audit --no-fund)
  fi
}

mkdir -p "$BENCH_DIR"
ensure_build_tools
ensure_postgres
PGBENCH="$(find_pgbench)"
ensure_original
ensure_graphile

say "building the server and the UI (release)"
build_site --release
say "building the bench binary (release)"
cargo build -p bench --release

say "scraping: the extract bench"
cargo bench -p engine --features runtime --bench extract | tee "$BENCH_DIR/extract.txt"

# Only a full run replaces the README's table.
readme=()
[ "$#" -eq 0 ] && readme=(--readme "$ROOT/README.md")
say "running the benchmarks"
exec "$ROOT/target/release/sneakpeek-bench" \
  --pgbench "$PGBENCH" \
  --extract-output "$BENCH_DIR/extract.txt" \
  --out-dir "$BENCH_DIR" \
  "${readme[@]}" \
  "$@"
