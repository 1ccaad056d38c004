#!/usr/bin/env bash
# Installs the third-party MCP software that Hangar's end-to-end tests and
# `make conformance` run against, from the npm registry only, at the versions
# pinned by package.json and package-lock.json next to this script:
#   node 22 (the conformance suite needs Node >= 22; node_modules/.bin/node),
#   @modelcontextprotocol/conformance, server-everything, sdk (TypeScript), inspector.
# Everything goes into e2e/thirdparty/node_modules (gitignored). A second run
# with an unchanged lock file returns at once. Safe under CI=true with no stdin.
#
# Usage: e2e/thirdparty/install.sh [--force]
set -euo pipefail
cd "$(dirname "$0")"

stamp=node_modules/.hangar-install-stamp
want=$(cat package.json package-lock.json | sha256sum | cut -d' ' -f1)

if [[ "${1:-}" != "--force" && -f "$stamp" && "$(cat "$stamp")" == "$want" && -x node_modules/.bin/node ]]; then
	echo "third-party MCP tooling is up to date in $PWD/node_modules"
	exit 0
fi

if ! command -v npm >/dev/null 2>&1; then
	# A fresh Debian machine may lack npm: install it from Debian's packages.
	sudo=""
	[ "$(id -u)" = 0 ] || sudo="sudo -n"
	if command -v apt-get >/dev/null 2>&1; then
		echo "npm is missing: installing Debian's npm package ..."
		export DEBIAN_FRONTEND=noninteractive
		$sudo apt-get update -qq </dev/null && $sudo apt-get install -y -qq --no-install-recommends npm >/dev/null </dev/null || true
	fi
	if ! command -v npm >/dev/null 2>&1; then
		echo "install.sh: npm is not installed and could not be installed; install Node.js and npm (Debian: apt-get install -y npm) and run $0 again" >&2
		exit 1
	fi
fi

registry=$(npm config get registry)
echo "installing third-party MCP tooling from $registry into $PWD/node_modules ..."
start=$SECONDS
# The inspector's postinstall only matters in its own source tree.
export INSPECTOR_SKIP_CLIENT_INSTALL=1
if ! npm ci --no-audit --no-fund --prefer-offline --loglevel=error </dev/null; then
	echo "install.sh: 'npm ci' failed (above). Is the npm registry ($registry) reachable from here?" >&2
	echo "install.sh: check with 'npm ping', then run $0 again" >&2
	exit 1
fi
if ! version=$(node_modules/.bin/node --version) || [[ "$version" != v22.* ]]; then
	echo "install.sh: node_modules/.bin/node is '${version:-missing}', want v22.x (the npm package 'node' did not install its binary)" >&2
	exit 1
fi
echo "$want" >"$stamp"
echo "installed in $((SECONDS - start)) s: node $version, $(node_modules/.bin/node -p 'require("@modelcontextprotocol/conformance/package.json").version' 2>/dev/null | sed 's/^/conformance /')"
