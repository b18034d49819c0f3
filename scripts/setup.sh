#!/usr/bin/env bash
# Install retinue and what it needs on a fresh Debian machine with Python 3.11.
#   scripts/setup.sh          the package, the embedded local model and the sandbox (runs the main job)
#   scripts/setup.sh --dev    also every optional extra and the test tools (runs the tests)
set -euo pipefail
cd "$(dirname "$0")/.."
export DEBIAN_FRONTEND=noninteractive PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_ROOT_USER_ACTION=ignore
dev=false
[ "${1:-}" = "--dev" ] && dev=true

sudo_if_needed() { if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi; }

packages=""
command -v bwrap >/dev/null || packages="$packages bubblewrap"
# The prebuilt engine (xllamacpp) links llama.cpp against the OpenMP runtime.
ldconfig -p 2>/dev/null | grep -q 'libgomp\.so\.1' || packages="$packages libgomp1"
if $dev; then
  command -v chromium >/dev/null || packages="$packages chromium"
  command -v node >/dev/null || packages="$packages nodejs npm"
  # Durable-run tests start throwaway PostgreSQL clusters (initdb + pg_ctl); Debian keeps them off PATH.
  command -v initdb >/dev/null || ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || packages="$packages postgresql"
fi
if [ -n "$packages" ]; then
  echo "== apt-get install$packages"
  sudo_if_needed apt-get update -qq
  # shellcheck disable=SC2086
  sudo_if_needed apt-get install -y -qq $packages >/dev/null
fi

# The local model runs on xllamacpp, a prebuilt wheel: nothing compiles for the main job. The tests also cover the
# fallback engine, llama-cpp-python, which compiles from source (no prebuilt CPU build of it on PyPI runs on glibc
# 2.36: llama-cpp-py-sync's manylinux2014 wheels need glibc 2.38's __isoc23_* symbols). retinue never uses
# llama.cpp's multimodal library, so it is left out: 51 of the 178 files to compile.
export CMAKE_ARGS="${CMAKE_ARGS:--DLLAVA_BUILD=OFF}"
if $dev; then
  echo "== pip install -e .[all,dev]"
  python3 -m pip install -q -e '.[all,dev]'
  if [ -f tests/mcp/install_servers.sh ]; then bash tests/mcp/install_servers.sh; fi
else
  echo "== pip install -e .[local]"
  python3 -m pip install -q -e '.[local]'
fi
