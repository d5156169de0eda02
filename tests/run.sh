#!/usr/bin/env bash
# The test command: builds the host, the plugins and the ABI-mismatch fixture, then
# runs every test of the workspace. Extra arguments go to `cargo test`, e.g.
#   bash tests/run.sh -p mswoole-tests --test routing
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

target="${CARGO_TARGET_DIR:-target}"

# Real servers the tests start as private processes, from Debian's packages when they
# are missing (the tests fail loudly without them, they never skip): redis-server for
# the Redis tests, nginx for the proxy tests (config/nginx.conf), systemd-analyze to
# verify config/mswoole.service, chromium for the demo pages, curl for the manager's
# HTTP API as backends call it. The tests never use a packaged service: they run their
# own on free loopback ports (on a machine with systemd, Debian starts the packaged
# redis-server and nginx after installing them, as it always does).
missing=()
command -v redis-server >/dev/null 2>&1 || missing+=(redis-server)
command -v nginx >/dev/null 2>&1 || [ -x /usr/sbin/nginx ] || missing+=(nginx)
command -v systemd-analyze >/dev/null 2>&1 || missing+=(systemd)
# The demo pages' test drives a real headless Chromium through chromedriver, both
# Debian's (nothing downloads a browser); the Chinese on its pages needs a CJK font.
command -v chromium >/dev/null 2>&1 || missing+=(chromium)
command -v chromedriver >/dev/null 2>&1 || missing+=(chromium-driver)
[ -e /usr/share/fonts/truetype/wqy/wqy-zenhei.ttc ] || missing+=(fonts-wqy-zenhei)
command -v curl >/dev/null 2>&1 || missing+=(curl)
# The JWT tests sign tokens and make RSA keys with openssl, as a backend would.
command -v openssl >/dev/null 2>&1 || missing+=(openssl)
if [ "${#missing[@]}" -gt 0 ]; then
  echo "tests/run.sh: installing Debian packages: ${missing[*]}" >&2
  sudo=""; [ "$(id -u)" = 0 ] || sudo="sudo"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${missing[@]}" >/dev/null
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
    cargo build --quiet --manifest-path tests/fixtures/swap/Cargo.toml --target-dir "$target/fixtures" ${4:+--features "$4"}
  cp "$target/fixtures/debug/libswap_fixture.so" "$variants/$3"
}
for n in 1 2 3 4 5 6; do build_swap "$n" normal "libswap_v$n.so"; done
build_swap 7 construct-error libswap_construct_error.so
build_swap 8 construct-panic libswap_construct_panic.so
build_swap 9 import-error libswap_import_error.so
build_swap 10 drop-panic libswap_drop_panic.so
build_swap 11 hooks-panic libswap_hooks_panic.so
build_swap 12 normal libswap_ahead.so version-ahead
build_swap 0 normal libswap_v0.so
# A plugin built against plugin-api 1.0 as released (a frozen copy): every later
# host must still load and serve it (docs/MODULES.md, "ABI evolution").
cargo build --manifest-path tests/fixtures/abi-v1/Cargo.toml --target-dir "$target/fixtures"
# The Vote module is built the way an outside author builds it (examples/vote/README.md):
# its own project and target directory, in release; tests/tests/vote.rs serves that file.
cargo build --release --manifest-path examples/vote/Cargo.toml --target-dir examples/vote/target
# plugin-api is what outside authors build against: it must stay publishable
# (metadata, license, readme), and its packaged form must build on its own.
cargo package -p mswoole-plugin-api --allow-dirty --quiet
cargo test --workspace "$@"
# Vote's own unit tests (the module test kit, no host), as its author runs them; the
# workspace's target directory, so the kit's dependencies are not built twice.
cargo test --manifest-path examples/vote/Cargo.toml --target-dir "$target"
# The load generator at smoke size (a few connections, a second each) against the
# baseline and a host it starts, SQL actions on SQLite through the swap fixture
# included: proves ws-bench works. Benchmarks are never timed
# tests; docs/BENCHMARKS.md says how to run them.
"$target/debug/ws-bench" smoke --host-bin "$target/debug/mswoole" --io-plugin "$variants/libswap_v1.so"
