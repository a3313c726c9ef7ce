# scripts/lib/common.sh -- what the project's scripts share: installing the
# Debian packages spate needs (only those missing) and building with CMake.
# Source it; do not run it.

SPATE_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"

# Packages for building and testing spate.
SPATE_BUILD_PACKAGES=(
  build-essential cmake pkg-config
  libzmq3-dev libmsgpack-dev liblmdb-dev libxxhash-dev zlib1g-dev
  libcriterion-dev libjson-c-dev libmicrohttpd-dev libcurl4-openssl-dev
)

# Programs the tests drive: a real Prometheus scrapes /metrics, a headless
# Chromium loads the web UI, a real Alertmanager receives alerts (tests skip
# themselves when these are missing).
SPATE_TEST_PACKAGES=(
  prometheus chromium
  prometheus-alertmanager
)

say() { printf '\033[1m==> %s\033[0m\n' "$*" >&2; }

# spate_install PACKAGE... -- apt-get install what is not installed yet.
spate_install() {
  local missing=()
  for p in "$@"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
  done
  [ ${#missing[@]} -eq 0 ] && return 0
  say "installing ${missing[*]}"
  local sudo=""
  [ "$(id -u)" -ne 0 ] && sudo="sudo"
  export DEBIAN_FRONTEND=noninteractive
  if ! $sudo apt-get install -y -q --no-install-recommends "${missing[@]}" >/tmp/spate-apt.log 2>&1; then
    $sudo apt-get update -q >>/tmp/spate-apt.log 2>&1 || true
    $sudo apt-get install -y -q --no-install-recommends "${missing[@]}" >>/tmp/spate-apt.log 2>&1 || {
      tail -20 /tmp/spate-apt.log >&2
      echo "spate: could not install ${missing[*]} (log: /tmp/spate-apt.log)" >&2
      return 1
    }
  fi
}

# spate_build DIR [TARGET...] -- configure DIR once (CMake flags from the
# SPATE_CMAKE_ARGS array, if set) and build the targets (default: all).
spate_build() {
  local dir="$1"; shift
  if [ ! -f "$dir/CMakeCache.txt" ]; then
    cmake -S "$SPATE_ROOT" -B "$dir" "${SPATE_CMAKE_ARGS[@]}" >/dev/null
  fi
  local targets=()
  for t in "$@"; do targets+=(--target "$t"); done
  local log
  log=$(mktemp)
  if ! cmake --build "$dir" -j"$(nproc)" "${targets[@]}" >"$log" 2>&1; then
    grep -E 'error|Error|warning' "$log" | head -40 >&2 || tail -40 "$log" >&2
    rm -f "$log"
    return 1
  fi
  rm -f "$log"
}
