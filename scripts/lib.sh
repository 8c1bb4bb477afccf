# Shared helpers for the scripts in this directory; sourced, not run.

# need_go fails clearly when there is no Go toolchain.
need_go() {
	if ! command -v go >/dev/null 2>&1; then
		[ -x /usr/local/go/bin/go ] && export PATH=$PATH:/usr/local/go/bin
	fi
	command -v go >/dev/null 2>&1 || { echo "needs Go (https://go.dev/doc/install)" >&2; exit 1; }
}

# need_debs PKG:COMMAND...: apt-get install each Debian package whose command is missing.
need_debs() {
	local missing=() pair
	for pair in "$@"; do
		command -v "${pair##*:}" >/dev/null 2>&1 || missing+=("${pair%%:*}")
	done
	[ ${#missing[@]} -eq 0 ] && return 0
	apt_install "${missing[@]}"
}

# need_python_modules PKG:MODULE...: apt-get install each Debian package whose Python
# module Debian's own interpreter (/usr/bin/python3: a python3 earlier on PATH may not see
# Debian's modules) cannot import, e.g. python3-libtorrent:libtorrent.
need_python_modules() {
	local missing=() pair
	for pair in "$@"; do
		/usr/bin/python3 -c "import ${pair##*:}" >/dev/null 2>&1 || missing+=("${pair%%:*}")
	done
	[ ${#missing[@]} -eq 0 ] && return 0
	apt_install "${missing[@]}"
}

# apt_install PKG...: install Debian packages, quietly.
apt_install() {
	local sudo=
	[ "$(id -u)" -ne 0 ] && sudo=sudo
	echo "installing: $*"
	$sudo apt-get update -qq
	DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends \
		$(printf '%s\n' "$@" | sort -u) >/dev/null
}

# jail CMD...: run CMD in a network namespace with only loopback: the workplace's netjail
# when present, else our own unshare (needs root), else as is with a warning.
jail() {
	local nj
	nj="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)/shared/bin/netjail"
	if [ -x "$nj" ]; then
		"$nj" "$@"
	elif [ "$(id -u)" -eq 0 ] && command -v unshare >/dev/null 2>&1; then
		unshare --net --fork -- sh -c 'ip link set lo up && exec "$@"' jail "$@"
	else
		echo "warning: not root, running without a network namespace" >&2
		"$@"
	fi
}

# fuzz_targets prints pkg:FuzzName for every fuzz target in the module.
fuzz_targets() {
	grep -rl --include='*_test.go' '^func Fuzz' . | while read -r f; do
		local pkg="./$(dirname "${f#./}")"
		grep -o '^func Fuzz[A-Za-z0-9_]*' "$f" | sed "s|^func |$pkg:|"
	done
}
