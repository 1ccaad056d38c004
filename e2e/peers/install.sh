#!/usr/bin/env bash
# Installs the peers that `make bench-peers` compares Hangar with:
#   nginx (Debian package, the plain HTTP reverse proxy), only when missing;
#   the MCP gateways and proxies pinned by package.json and package-lock.json
#   next to this script (npm registry), into e2e/peers/node_modules;
#   and, through e2e/thirdparty/install.sh, Node 22 and server-everything.
# A second run with nothing changed returns at once. A peer that cannot be
# installed is left out with a warning: hangar-peers then skips it and says why.
#
# Usage: e2e/peers/install.sh [--force]
set -uo pipefail
cd "$(dirname "$0")"

../thirdparty/install.sh || { echo "peers/install.sh: the third-party tooling (Node 22, server-everything) did not install" >&2; exit 1; }

if ! command -v nginx >/dev/null 2>&1 && [ ! -x /usr/sbin/nginx ]; then
	sudo=""
	[ "$(id -u)" = 0 ] || sudo="sudo -n"
	echo "nginx is missing: installing Debian's nginx package ..."
	export DEBIAN_FRONTEND=noninteractive
	if $sudo apt-get update -qq </dev/null && $sudo apt-get install -y -qq --no-install-recommends nginx >/dev/null </dev/null; then
		# The package starts its service where an init system runs: stop it,
		# hangar-peers starts its own nginx on a loopback port.
		if command -v systemctl >/dev/null 2>&1 && systemctl is-active --quiet nginx 2>/dev/null; then
			$sudo systemctl stop nginx || true
			$sudo systemctl disable nginx >/dev/null 2>&1 || true
		elif [ -f /run/nginx.pid ]; then
			$sudo /usr/sbin/nginx -s stop || true
		fi
	else
		echo "warning: nginx could not be installed (apt-get above); hangar-peers will skip it" >&2
	fi
fi

stamp=node_modules/.hangar-install-stamp
want=$(cat package.json package-lock.json | sha256sum | cut -d' ' -f1)
if [[ "${1:-}" != "--force" && -f "$stamp" && "$(cat "$stamp")" == "$want" ]]; then
	echo "MCP peers are up to date in $PWD/node_modules"
	exit 0
fi
registry=$(npm config get registry)
echo "installing the MCP peers from $registry into $PWD/node_modules ..."
start=$SECONDS
if ! npm ci --no-audit --no-fund --prefer-offline --loglevel=error </dev/null; then
	echo "warning: 'npm ci' failed (above): is the npm registry ($registry) reachable? hangar-peers will skip the npm peers" >&2
	exit 0
fi
echo "$want" >"$stamp"
echo "installed in $((SECONDS - start)) s: $(../thirdparty/node_modules/.bin/node -p '["@civic/passthrough-mcp-server","mcp-hub","mcp-proxy","supergateway"].map(p => p + " " + require("./node_modules/" + p + "/package.json").version).join(", ")')"
