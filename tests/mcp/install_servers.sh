#!/usr/bin/env bash
# Installs the reference MCP servers the tests in tests/mcp drive over stdio.
# They live outside the work tree (a per-user cache, reused across runs) so a
# fresh clone stays clean and CI pays for the download once per machine.
#
#   bash tests/mcp/install_servers.sh            # into $RETINUE_MCP_SERVERS_DIR
#   RETINUE_MCP_SERVERS_DIR=/some/dir bash tests/mcp/install_servers.sh
#
# Versions are pinned so a new server release cannot change what the tests see;
# keep them in step with SERVER_PACKAGES in tests/mcp/conftest.py.
set -euo pipefail

DIR="${RETINUE_MCP_SERVERS_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/retinue/mcp-servers}"
PACKAGES=(
  "@modelcontextprotocol/server-filesystem@2026.8.31"
  "@modelcontextprotocol/server-memory@2026.8.31"
)

if ! command -v npm >/dev/null 2>&1; then
  echo "install_servers.sh: npm is not installed; the MCP server tests will be skipped" >&2
  exit 0
fi

mkdir -p "$DIR"
# A package.json of our own keeps npm from walking up and installing into a parent project.
[ -f "$DIR/package.json" ] || echo '{"name": "retinue-mcp-test-servers", "private": true}' > "$DIR/package.json"
npm install --prefix "$DIR" --no-audit --no-fund --loglevel=error "${PACKAGES[@]}"
echo "MCP reference servers installed in $DIR"
