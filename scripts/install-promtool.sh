#!/usr/bin/env bash
# Installs promtool (Debian's prometheus package) for the tests of
# deploy/prometheus and deploy/grafana. Used by `make ops-tools` and .ci/run.
# The package would start a Prometheus server: a policy-rc.d keeps it from
# starting during the install, and any service it started anyway is stopped.
set -euo pipefail

if command -v promtool >/dev/null 2>&1; then
	promtool --version 2>&1 | head -1
	exit 0
fi
if ! command -v apt-get >/dev/null 2>&1; then
	echo "install-promtool: no apt-get here; install promtool (Prometheus 2.x) yourself and put it on PATH" >&2
	exit 1
fi
sudo=""
if [ "$(id -u)" != 0 ]; then
	if ! command -v sudo >/dev/null 2>&1; then
		echo "install-promtool: run as root or install sudo (needs apt-get install prometheus)" >&2
		exit 1
	fi
	sudo="sudo -n"
fi

# Keep the package's service from starting (the Debian convention), unless
# the machine already has a policy of its own.
policy=/usr/sbin/policy-rc.d
own_policy=0
if [ ! -e "$policy" ]; then
	printf '#!/bin/sh\nexit 101\n' | $sudo tee "$policy" >/dev/null
	$sudo chmod 0755 "$policy"
	own_policy=1
fi
cleanup() { if [ "$own_policy" = 1 ]; then $sudo rm -f "$policy"; fi; }
trap cleanup EXIT

export DEBIAN_FRONTEND=noninteractive
$sudo apt-get update -qq
$sudo apt-get install -y -qq --no-install-recommends prometheus >/dev/null

# If a service manager started Prometheus anyway, stop it: only promtool is wanted.
if command -v systemctl >/dev/null 2>&1 && systemctl is-active --quiet prometheus 2>/dev/null; then
	$sudo systemctl stop prometheus || true
	$sudo systemctl disable prometheus >/dev/null 2>&1 || true
elif [ -x /etc/init.d/prometheus ]; then
	$sudo /etc/init.d/prometheus stop >/dev/null 2>&1 || true
fi
promtool --version 2>&1 | head -1
