#!/usr/bin/env bash
# The test command: builds the host, the plugins and the ABI-mismatch fixture, then
# runs every test of the workspace. Extra arguments go to `cargo test`, e.g.
#   bash tests/run.sh -p mswoole-tests --test routing
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

target="${CARGO_TARGET_DIR:-target}"

# The Redis tests start private redis-server processes; install Debian's package
# when it is missing (the tests fail loudly without it, they never skip).
if ! command -v redis-server >/dev/null 2>&1; then
  echo "tests/run.sh: redis-server is missing; installing Debian's redis-server package" >&2
  sudo=""; [ "$(id -u)" = 0 ] || sudo="sudo"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq redis-server >/dev/null
fi

# The database layer's tests start a private MariaDB and a private PostgreSQL the
# same way (tests/src/mariadb.rs, tests/src/postgres.rs); install Debian's packages
# when their programs are missing. PostgreSQL's are under /usr/lib/postgresql/*/bin.
need=()
command -v mariadb-install-db >/dev/null 2>&1 || need+=(mariadb-server)
if ! command -v initdb >/dev/null 2>&1 && ! ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1; then
  need+=(postgresql)
fi
if [ "${#need[@]}" -gt 0 ]; then
  echo "tests/run.sh: installing Debian's ${need[*]} for the database tests" >&2
  sudo=""; [ "$(id -u)" = 0 ] || sudo="sudo"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${need[@]}" >/dev/null
fi

# The end-to-end tests start target/debug/mswoole with the built plugin libraries.
cargo build --workspace
# A plugin built against an incompatible plugin-api: its own workspace and target
# directory, so it never lands next to the real plugins.
cargo build --manifest-path tests/fixtures/abi-mismatch/Cargo.toml --target-dir "$target/fixtures"
# Variants of the Swap module for the hot-swap tests: one crate built with other
# replies (SWAP_VARIANT) and failure modes (SWAP_BEHAVIOUR); each build takes a second.
variants="$target/fixtures/variants"
mkdir -p "$variants"
build_swap() {
  SWAP_VARIANT="$1" SWAP_BEHAVIOUR="$2" \
    cargo build --quiet --manifest-path tests/fixtures/swap/Cargo.toml --target-dir "$target/fixtures"
  cp "$target/fixtures/debug/libswap_fixture.so" "$variants/$3"
}
for n in 1 2 3 4 5 6; do build_swap "$n" normal "libswap_v$n.so"; done
build_swap 7 construct-error libswap_construct_error.so
build_swap 8 construct-panic libswap_construct_panic.so
build_swap 9 import-error libswap_import_error.so
build_swap 0 normal libswap_v0.so
cargo test --workspace "$@"
# The load generator at smoke size (a few connections, a second each) against the
# baseline and a host it starts: proves ws-bench works. Benchmarks are never timed
# tests; docs/BENCHMARKS.md says how to run them.
"$target/debug/ws-bench" smoke --host-bin "$target/debug/mswoole"
