# Shared by scripts/run.sh and scripts/test.sh: installs what building Sneakpeek needs
# when it is missing. Everything comes from the Rust crate registry, npm or Debian.

set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
CARGO_LEPTOS_VERSION="0.3.10"

say() { printf '\033[1;34m==>\033[0m %s\n' "$*" >&2; }
die() { printf '\033[1;31merror:\033[0m %s\n' "$*" >&2; exit 1; }

# The wasm-bindgen version the workspace is locked to; the CLI must match it exactly.
wasm_bindgen_version() {
  awk '/^name = "wasm-bindgen"$/ { getline; gsub(/version = |"/, ""); print; exit }' "$ROOT/Cargo.lock"
}

ensure_wasm_target() {
  if ! rustup target list --installed | grep -qx wasm32-unknown-unknown; then
    say "adding the wasm32-unknown-unknown target"
    rustup target add wasm32-unknown-unknown
  fi
}

ensure_wasm_bindgen() {
  local wanted
  wanted="$(wasm_bindgen_version)"
  if [ "$(wasm-bindgen --version 2>/dev/null | awk '{print $2}')" != "$wanted" ]; then
    say "installing wasm-bindgen-cli $wanted (about 10 minutes, once per machine)"
    # Not --locked: its lockfile pins a crate version the registry mirror lacks.
    cargo install wasm-bindgen-cli --version "$wanted" --force
  fi
}

ensure_cargo_leptos() {
  if ! cargo leptos --version 2>/dev/null | grep -q "$CARGO_LEPTOS_VERSION"; then
    say "installing cargo-leptos $CARGO_LEPTOS_VERSION (about 35 minutes on 2 cores, once per machine)"
    cargo install cargo-leptos --version "$CARGO_LEPTOS_VERSION" --locked --features no_downloads --force
  fi
}

# wasm-opt for release builds, from npm's binaryen (Debian's is too old and breaks hydration).
ensure_wasm_opt() {
  if [ ! -x "$ROOT/tools/node_modules/.bin/wasm-opt" ]; then
    say "installing wasm-opt (npm binaryen)"
    (cd "$ROOT/tools" && npm ci --no-audit --no-fund)
  fi
  export PATH="$ROOT/tools/node_modules/.bin:$PATH"
}

ensure_build_tools() {
  command -v npm >/dev/null || die "npm is required (Node.js 20 or later)"
  ensure_wasm_target
  ensure_wasm_bindgen
  ensure_cargo_leptos
  ensure_wasm_opt
}

# Builds the server and the site with cargo-leptos. `--split` is required: the pages other
# than the scrapers list are lazy routes, whose code the split step moves into modules the
# browser loads on first visit; an unsplit bundle cannot instantiate.
build_site() {
  cargo leptos build --split "$@"
}
