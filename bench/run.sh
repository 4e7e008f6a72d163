#!/usr/bin/env bash
# bench/run.sh: install what the benchmark needs, then run the harness
# (bench/cmd/benchrun) with the given flags. `make bench` runs it as is,
# `make bench-quick` with -quick.
#
# As root with apt-get (Debian, Ubuntu) it installs the missing upstream and
# proxy: nginx-light (or nginx) and squid, without letting their packages
# start the system services. Otherwise, or if the install fails, the
# harness falls back to its Go upstream and skips the squid arm. Node and
# npm are not installed here: the node_http and undici arms run when they
# are present (the harness installs undici itself into a temporary folder).
set -euo pipefail
cd "$(dirname "$0")/.."

have() { command -v "$1" >/dev/null 2>&1 || [ -x "/usr/sbin/$1" ]; }

install_missing() {
	local pkgs=()
	have nginx || pkgs+=(nginx)
	have squid || pkgs+=(squid)
	[ ${#pkgs[@]} -gt 0 ] || return 0
	if [ "$(id -u)" != 0 ] || ! command -v apt-get >/dev/null 2>&1; then
		echo "bench: ${pkgs[*]} missing and cannot be installed here (needs root and apt-get); running without" >&2
		return 0
	fi
	echo "bench: installing ${pkgs[*]} with apt-get" >&2
	apt-get update -qq >/dev/null 2>&1 || true
	local i
	for i in "${!pkgs[@]}"; do
		if [ "${pkgs[$i]}" = nginx ] && apt-cache show nginx-light >/dev/null 2>&1; then
			pkgs[$i]=nginx-light
		fi
	done
	# A policy-rc.d that answers 101 keeps the packages' services from
	# starting; one already in place is left alone.
	local policy=""
	if [ ! -e /usr/sbin/policy-rc.d ]; then
		printf '#!/bin/sh\nexit 101\n' >/usr/sbin/policy-rc.d
		chmod +x /usr/sbin/policy-rc.d
		policy=1
	fi
	DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${pkgs[@]}" >/dev/null ||
		echo "bench: apt-get install ${pkgs[*]} failed; running without" >&2
	[ -z "$policy" ] || rm -f /usr/sbin/policy-rc.d
	# Stop what the packages may have started all the same (systemd hosts).
	local svc
	for svc in nginx squid; do
		case " ${pkgs[*]} " in *" $svc"*)
			if command -v systemctl >/dev/null 2>&1 && [ -d /run/systemd/system ]; then
				systemctl stop "$svc" >/dev/null 2>&1 || true
			elif command -v service >/dev/null 2>&1; then
				service "$svc" stop >/dev/null 2>&1 || true
			fi
			;;
		esac
	done
}

install_missing

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
go build -o "$tmp/benchrun" ./bench/cmd/benchrun
"$tmp/benchrun" "$@"
