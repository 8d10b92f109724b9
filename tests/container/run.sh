#!/usr/bin/env bash
# The container image, built and run without a registry or a container engine.
#
# The Containerfile's two bases (docker.io/library/rust, gcr.io/distroless/cc-debian12) live in
# registries this machine cannot reach, and no Docker engine runs here. This script builds the
# same runtime image from Debian packages instead and runs it the way the Deployment runs it:
#
#   1. cargo build --release --locked (the Containerfile's builder stage, on the host toolchain);
#   2. a distroless-like base rootfs from Debian packages (`apt-get download` + `dpkg-deb -x`: glibc,
#      libgcc, libstdc++, libssl, CA certificates, tzdata; /etc/passwd with nonroot 65532; no shell)
#      made into an OCI image with umoci, then the binary added as a second layer and the image
#      config (USER, ENTRYPOINT, CMD, EXPOSE) taken from the Containerfile's runtime stage, and
#      read back and compared, so the two cannot drift;
#   3. `umoci unpack` to an OCI bundle, whose config.json gets the Deployment's securityContext
#      (read-only root, no capabilities, no privilege escalation, the RuntimeDefault seccomp
#      profile of CRI-O from containers-common, the 384Mi memory limit) and the TLS Secret bind-
#      mounted read-only at /etc/image-config-webhook/tls in kubelet's `..data` symlink layout,
#      in a network namespace of its own (the pod's);
#   4. `runc run`, then the checks: UID/GID 65532, no capabilities, no_new_privs, seccomp, the
#      read-only root (mount options and a refused write), /readyz over HTTP on 8080 and over
#      TLS on 8443 verified with the CA, AdmissionReviews denied and allowed over TLS, a
#      certificate rotation through `..data` picked up without a restart, a clean SIGTERM stop;
#   5. cleanup of the container, the network namespace and every temporary file, on any exit.
#
# With --containerfile, also the Containerfile itself, unchanged, with `buildah bud`: its two
# FROM names are made locally first, from Debian packages only, in a private buildah storage
# (gcr.io/distroless/cc-debian12:nonroot = the base of step 2; docker.io/library/rust:1.95-slim-
# bookworm = debootstrap --variant=minbase + gcc, libc6-dev, ca-certificates + the host's Rust
# 1.95.0 toolchain), `--pull=never`; the image it builds is pushed to the same OCI layout and
# goes through the same checks. Slower: its cargo build starts with an empty cache (~6-10 min).
#
# Usage: tests/container/run.sh [--install] [--keep] [--containerfile] [--runtime runc|crun]
#   --install        apt-get install the missing tools (CI); without it a missing tool exits 77
#   --keep           keep the work directory (image layout, bundles, logs) for inspection
#   --containerfile  also build the Containerfile with buildah and run that image (see above)
#   --runtime        the OCI runtime (default runc; crun refuses this machine's hybrid cgroups)
# Exit codes: 0 every check passed, 1 a check or a step failed, 2 usage, 77 a tool is missing
# or the script is not run as root (runc, network namespaces and bind mounts need root).
set -euo pipefail

repo=$(cd "$(dirname "$0")/../.." && pwd)
install=0
keep=0
containerfile=0
runtime=runc
while [ $# -gt 0 ]; do
  case "$1" in
    --install) install=1 ;;
    --keep) keep=1 ;;
    --containerfile) containerfile=1 ;;
    --runtime) runtime=${2:?--runtime needs runc or crun}; shift ;;
    --runtime=*) runtime=${1#--runtime=} ;;
    -h | --help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
    *) echo "usage: $0 [--install] [--keep] [--containerfile] [--runtime runc|crun]" >&2; exit 2 ;;
  esac
  shift
done
case "$runtime" in runc | crun) ;; *) echo "--runtime: runc or crun, not $runtime" >&2; exit 2 ;; esac

start=$(date +%s)
say() { printf '[container %3ds] %s\n' "$(($(date +%s) - start))" "$*"; }
what=
pass() { say "ok   ${what:+[$what] }$*"; }
fail() {
  say "FAIL ${what:+[$what] }$*" >&2
  if [ -n "${log:-}" ] && [ -s "$log" ]; then
    echo "--- the webhook's log (last 20 lines) ---" >&2
    tail -n 20 "$log" >&2 || true
  fi
  exit 1
}
skip77() { say "SKIP $*" >&2; exit 77; }

# ---------------------------------------------------------------------------------------------
# Tools
# ---------------------------------------------------------------------------------------------
[ "$(id -u)" = 0 ] || skip77 "needs root: runc (rootful), ip netns and bind mounts"

# command -> Debian package
declare -A package_of=(
  [umoci]=umoci [$runtime]=$runtime [jq]=jq [curl]=curl [openssl]=openssl [ip]=iproute2
  [setpriv]=util-linux [timeout]=coreutils [dpkg-deb]=dpkg [apt-get]=apt
)
seccomp_source=/usr/share/containers/seccomp.json # containers-common: CRI-O's RuntimeDefault
missing=()
for cmd in "${!package_of[@]}"; do
  command -v "$cmd" >/dev/null 2>&1 || missing+=("${package_of[$cmd]}")
done
[ -r "$seccomp_source" ] || missing+=(golang-github-containers-common)
if [ "$containerfile" = 1 ]; then
  command -v buildah >/dev/null 2>&1 || missing+=(buildah)
  command -v debootstrap >/dev/null 2>&1 || missing+=(debootstrap)
  command -v skopeo >/dev/null 2>&1 || missing+=(skopeo)
fi
command -v cargo >/dev/null 2>&1 || skip77 "cargo not found (the machine's Rust toolchain)"
if [ ${#missing[@]} -gt 0 ]; then
  if [ "$install" = 1 ]; then
    say "installing: ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    timeout 600 apt-get install -y --no-install-recommends "${missing[@]}" >/dev/null ||
      { timeout 300 apt-get update >/dev/null &&
        timeout 600 apt-get install -y --no-install-recommends "${missing[@]}" >/dev/null; } ||
      fail "apt-get install ${missing[*]}"
  else
    skip77 "missing Debian packages: ${missing[*]} (apt-get install -y --no-install-recommends ${missing[*]}, or run with --install)"
  fi
fi
say "tools: $(umoci --version) | $($runtime --version | head -n1) | $(jq --version) | $(curl --version | head -n1 | cut -d' ' -f1-2) | $(cargo --version)"
say "tools: apt-get download + dpkg-deb -x (base rootfs), umoci (OCI image), $runtime (run), ip netns (the pod's network), curl (probes and reviews)"
[ "$containerfile" = 1 ] && say "tools: $(buildah --version) + $(debootstrap --version) (--containerfile)"

# ---------------------------------------------------------------------------------------------
# Work directory and cleanup, on every exit
# ---------------------------------------------------------------------------------------------
work=$(mktemp -d /tmp/icw-container.XXXXXX)
chmod 0755 "$work"
containers=() # started containers, also names of their network namespaces
log=
# buildah in a private storage and temporary directory (its RUN cache mounts) under $work.
export TMPDIR=$work/tmp
mkdir -p "$TMPDIR"
bah() { buildah --root "$work/storage" --runroot "$work/runroot" --storage-driver overlay "$@"; }
cleanup() {
  local rc=$? c m
  for c in ${containers[@]+"${containers[@]}"}; do
    if "$runtime" state "$c" >/dev/null 2>&1; then
      timeout 10 "$runtime" kill "$c" KILL >/dev/null 2>&1 || true
      timeout 10 "$runtime" delete -f "$c" >/dev/null 2>&1 || true
    fi
    ip netns del "$c" >/dev/null 2>&1 || true
  done
  if [ -d "$work/storage" ]; then
    timeout 60 bah rm --all >/dev/null 2>&1 || true
    timeout 120 bah rmi --all --force >/dev/null 2>&1 || true
    # Whatever containers/storage left mounted under $work, deepest first.
    awk -v w="$work/" 'index($5, w) == 1 { print $5 }' /proc/self/mountinfo | sort -r |
      while read -r m; do umount -l "$m" 2>/dev/null || true; done
  fi
  if [ "$keep" = 1 ]; then
    say "kept $work"
  else
    rm -rf "$work"
  fi
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 1' INT TERM
# Any step that fails without its own message says where.
set -E
trap 'rc=$?; fail "line $LINENO: \`$BASH_COMMAND\` exited with $rc"' ERR

# ---------------------------------------------------------------------------------------------
# 1. The release binary (the Containerfile's builder stage)
# ---------------------------------------------------------------------------------------------
say "cargo build --release --locked --bin image-config-webhook"
(cd "$repo" && timeout 1800 cargo build --release --locked --bin image-config-webhook) ||
  fail "cargo build"
target_dir=$(cd "$repo" && cargo metadata --format-version 1 --no-deps --locked | jq -r .target_directory)
binary=$target_dir/release/image-config-webhook
[ -x "$binary" ] || fail "no binary at $binary"
pass "release binary: $binary ($(du -h "$binary" | cut -f1))"

# ---------------------------------------------------------------------------------------------
# 2. The Containerfile's runtime stage: what this image must match
# ---------------------------------------------------------------------------------------------
# Logical lines (continuations joined, comments dropped) of the last stage.
runtime_stage=$(awk '
  /^[[:space:]]*#/ { next }
  { line = $0; sub(/^[[:space:]]+/, "", line); sub(/[[:space:]]+$/, "", line) }
  line == "" && cur == "" { next }
  /\\[[:space:]]*$/ { sub(/\\[[:space:]]*$/, "", line); cur = cur line " "; next }
  { cur = cur line; print cur; cur = "" }
' "$repo/Containerfile" | awk 'toupper($1) == "FROM" { stage = "" } { stage = stage $0 "\n" } END { printf "%s", stage }')
instruction() { printf '%s\n' "$runtime_stage" | awk -v k="$1" 'toupper($1) == k { sub(/^[^[:space:]]+[[:space:]]+/, ""); v = $0 } END { print v }'; }
cf_from=$(instruction FROM)
cf_user=$(instruction USER)
cf_entrypoint=$(instruction ENTRYPOINT | jq -c .) || fail "Containerfile ENTRYPOINT is not a JSON array"
cf_cmd=$(instruction CMD | jq -c .) || fail "Containerfile CMD is not a JSON array"
cf_ports=$(printf '%s\n' "$runtime_stage" | awk 'toupper($1) == "EXPOSE" { for (i = 2; i <= NF; i++) print $i }' |
  sed 's#^\([0-9]*\)$#\1/tcp#' | jq -R . | jq -sc 'map({(.): {}}) | add // {}')
cf_dest=$(instruction COPY | awk '{ print $NF }')
expected_base=gcr.io/distroless/cc-debian12:nonroot
[ "$cf_from" = "$expected_base" ] ||
  fail "the Containerfile's runtime base is now '$cf_from', not $expected_base: update the base rootfs this script assembles"
[ "$cf_entrypoint" = "$(jq -cn --arg d "$cf_dest" '[$d]')" ] ||
  fail "ENTRYPOINT $cf_entrypoint is not the copied binary $cf_dest"
pass "Containerfile runtime stage: FROM $cf_from USER $cf_user ENTRYPOINT $cf_entrypoint CMD $cf_cmd EXPOSE $(jq -r 'keys | join(" ")' <<<"$cf_ports")"

# ---------------------------------------------------------------------------------------------
# 3. The base: a distroless/cc-debian12:nonroot equivalent from Debian packages
# ---------------------------------------------------------------------------------------------
# What gcr.io/distroless/cc-debian12 holds: base-files, netbase, tzdata, ca-certificates (the
# "static" image) + libc6, libgcc-s1, libgomp1, libssl3, libstdc++6 ("cc"). No shell, no dpkg.
base_packages=(base-files netbase tzdata ca-certificates libc6 libgcc-s1 libgomp1 libssl3 libstdc++6)
mkdir -p "$work/debs" "$work/rootfs"
download() { (cd "$work/debs" && timeout 300 apt-get download -q -o APT::Sandbox::User=root "${base_packages[@]}" >/dev/null 2>&1); }
if ! download; then
  [ "$install" = 1 ] || skip77 "apt-get download ${base_packages[*]} failed (no package lists? run apt-get update, or --install)"
  timeout 300 apt-get update >/dev/null || fail "apt-get update"
  download || fail "apt-get download ${base_packages[*]}"
fi
rootfs=$work/rootfs
mkdir -p "$rootfs/var/lib/dpkg/status.d"
for deb in "$work"/debs/*.deb; do
  dpkg-deb -x "$deb" "$rootfs"
  # As distroless does: the packages' control data where image scanners look for it.
  dpkg-deb -f "$deb" >"$rootfs/var/lib/dpkg/status.d/$(dpkg-deb -f "$deb" Package)"
done
# ca-certificates' maintainer script (update-ca-certificates) does not run: its bundle, by hand.
mkdir -p "$rootfs/etc/ssl/certs"
find "$rootfs/usr/share/ca-certificates" -name '*.crt' | LC_ALL=C sort | xargs cat >"$rootfs/etc/ssl/certs/ca-certificates.crt"
# distroless's users: root, nobody, nonroot (65532), with no login shell.
cat >"$rootfs/etc/passwd" <<'EOF'
root:x:0:0:root:/root:/sbin/nologin
nobody:x:65534:65534:nobody:/nonexistent:/sbin/nologin
nonroot:x:65532:65532:nonroot:/home/nonroot:/sbin/nologin
EOF
cat >"$rootfs/etc/group" <<'EOF'
root:x:0:
nobody:x:65534:
tty:x:5:
staff:x:50:
nonroot:x:65532:
EOF
printf 'hosts: files dns\n' >"$rootfs/etc/nsswitch.conf"
install -d -o 65532 -g 65532 -m 0700 "$rootfs/home/nonroot"
chmod 1777 "$rootfs/tmp"
for sh in bin/sh bin/bash bin/dash usr/bin/sh usr/bin/bash usr/bin/dash bin/busybox usr/bin/busybox; do
  [ ! -e "$rootfs/$sh" ] || fail "the base has a shell: /$sh"
done
pass "base rootfs from Debian packages: $(cd "$work/debs" && ls -- *.deb | sed 's/_all\.deb$//; s/_amd64\.deb$//' | tr '\n' ' ')($(du -sh "$rootfs" | cut -f1), no shell)"

# ---------------------------------------------------------------------------------------------
# 4. The OCI image: the base layer, then the binary, with the Containerfile's config
# ---------------------------------------------------------------------------------------------
layout=$work/oci
umoci init --layout "$layout"
umoci new --image "$layout:distroless-cc-debian12-nonroot"
umoci insert --image "$layout:distroless-cc-debian12-nonroot" "$rootfs" / >/dev/null
# distroless's nonroot config.
umoci config --image "$layout:distroless-cc-debian12-nonroot" --os linux --architecture amd64 \
  --config.user 65532 --config.workingdir /home/nonroot \
  --config.env PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
  --config.env SSL_CERT_FILE=/etc/ssl/certs/ca-certificates.crt
umoci tag --image "$layout:distroless-cc-debian12-nonroot" latest
# COPY --from=builder <binary> <dest>: root-owned, 0755, as COPY writes it.
install -D -m 0755 "$binary" "$work/binary/image-config-webhook"
umoci insert --image "$layout:latest" "$work/binary/image-config-webhook" "$cf_dest" >/dev/null
config_args=(--config.user "$cf_user")
while IFS= read -r a; do config_args+=(--config.entrypoint "$a"); done < <(jq -r '.[]' <<<"$cf_entrypoint")
while IFS= read -r a; do config_args+=(--config.cmd "$a"); done < <(jq -r '.[]' <<<"$cf_cmd")
while IFS= read -r p; do config_args+=(--config.exposedports "$p"); done < <(jq -r 'keys[]' <<<"$cf_ports")
umoci config --image "$layout:latest" "${config_args[@]}"
# Read the config back from the layout (index -> manifest -> config blob) and compare.
blob() { printf '%s/blobs/sha256/%s' "$layout" "${1#sha256:}"; }
check_image_config() { # check_image_config <tag> <how it was built>
  local manifest config got want layers size
  manifest=$(jq -r --arg t "$1" '.manifests[] | select(.annotations["org.opencontainers.image.ref.name"] == $t) | .digest' "$layout/index.json")
  [ -n "$manifest" ] || fail "no tag $1 in $layout"
  config=$(jq -r .config.digest "$(blob "$manifest")")
  got=$(jq -cS '.config | {User, Entrypoint, Cmd, ExposedPorts}' "$(blob "$config")")
  want=$(jq -cnS --arg u "$cf_user" --argjson e "$cf_entrypoint" --argjson c "$cf_cmd" --argjson p "$cf_ports" \
    '{User: $u, Entrypoint: $e, Cmd: $c, ExposedPorts: $p}')
  [ "$got" = "$want" ] || fail "image $1: config $got differs from the Containerfile's $want"
  layers=$(jq '.layers | length' "$(blob "$manifest")")
  size=$(jq '[.layers[].size] | add' "$(blob "$manifest")")
  pass "OCI image $layout:$1 ($2; $manifest, $layers layers, $((size / 1024 / 1024)) MiB compressed): config matches the Containerfile"
}
check_image_config latest "umoci, from Debian packages"

# ---------------------------------------------------------------------------------------------
# 4b. --containerfile: the Containerfile itself, with buildah, from locally made FROM images
# ---------------------------------------------------------------------------------------------
if [ "$containerfile" = 1 ]; then
  builder_from=$(awk 'toupper($1) == "FROM" { print $2; exit }' "$repo/Containerfile")
  [ "$builder_from" = docker.io/library/rust:1.95-slim-bookworm ] ||
    fail "the Containerfile's builder is now '$builder_from': update the stand-in this script makes"
  say "debootstrap --variant=minbase --include=gcc,libc6-dev,ca-certificates bookworm (the builder's Debian)"
  timeout 900 debootstrap --variant=minbase --include=gcc,libc6-dev,ca-certificates bookworm \
    "$work/rust-rootfs" http://deb.debian.org/debian >"$work/debootstrap.log" 2>&1 ||
    fail "debootstrap: $(tail -n 3 "$work/debootstrap.log")"
  # rust:1.95-slim-bookworm's layout: toolchains under RUSTUP_HOME, commands in CARGO_HOME/bin.
  toolchain=$(rustc +1.95.0 --print sysroot 2>/dev/null || rustc --print sysroot)
  "$toolchain/bin/rustc" --version | grep -q '^rustc 1\.95\.' ||
    skip77 "the builder stand-in needs the host's Rust 1.95 toolchain; $toolchain is $("$toolchain/bin/rustc" --version)"
  c=$(bah from scratch)
  m=$(bah mount "$c")
  cp -a "$work/rust-rootfs/." "$m/"
  rm -rf "$work/rust-rootfs"
  tc=/usr/local/rustup/toolchains/1.95.0-x86_64-unknown-linux-gnu
  mkdir -p "$m$tc" "$m/usr/local/cargo/bin"
  cp -a "$toolchain/bin" "$toolchain/lib" "$m$tc/"
  [ ! -d "$toolchain/libexec" ] || cp -a "$toolchain/libexec" "$m$tc/"
  for b in "$m$tc"/bin/*; do ln -s "../../rustup/toolchains/1.95.0-x86_64-unknown-linux-gnu/bin/${b##*/}" "$m/usr/local/cargo/bin/"; done
  bah umount "$c" >/dev/null
  bah config --env PATH=/usr/local/cargo/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
    --env RUSTUP_HOME=/usr/local/rustup --env CARGO_HOME=/usr/local/cargo --env RUST_VERSION=1.95.0 --cmd bash "$c"
  bah commit -q "$c" "$builder_from" >/dev/null
  bah rm "$c" >/dev/null
  skopeo copy -q "oci:$layout:distroless-cc-debian12-nonroot" \
    "containers-storage:[overlay@$work/storage+$work/runroot]$expected_base" || fail "skopeo copy of the base into buildah's storage"
  pass "FROM images made locally: $builder_from (debootstrap + host $("$toolchain/bin/rustc" --version | cut -d' ' -f1-2)), $expected_base (step 3's base)"
  # The host's trust store for the RUN steps (read-only, not kept in the image): cargo's TLS to
  # crates.io goes through whatever CA this machine's network requires.
  say "buildah bud --pull=never -f Containerfile (its cargo build starts cold: several minutes)"
  (cd "$repo" && timeout 2400 buildah --root "$work/storage" --runroot "$work/runroot" --storage-driver overlay \
    bud --pull=never --isolation chroot --network host --layers=false -v /etc/ssl/certs:/etc/ssl/certs:ro \
    -f Containerfile -t localhost/image-config-webhook:containerfile . >"$work/bud.log" 2>&1) || fail "buildah bud: $(grep -v '^ *\(Compiling\|Downloaded\)' "$work/bud.log" | tail -n 15)"
  bah push -q localhost/image-config-webhook:containerfile "oci:$layout:containerfile" >/dev/null 2>&1 ||
    bah push localhost/image-config-webhook:containerfile "oci:$layout:containerfile"
  check_image_config containerfile "buildah bud of the unchanged Containerfile, $(grep -o 'Finished .*' "$work/bud.log" | tail -n1)"
fi

# ---------------------------------------------------------------------------------------------
# 5. The bundle, with the Deployment's securityContext, Secret volume and memory limit
# ---------------------------------------------------------------------------------------------
deployment=$repo/manifests/base/deployment.yaml
memory_limit=$(awk '/^[[:space:]]*limits:/ { l = 1; next } l && /^[[:space:]]*memory:/ { print $2; exit }' "$deployment")
case "$memory_limit" in
  *Mi) memory_bytes=$((${memory_limit%Mi} * 1024 * 1024)) ;;
  *Gi) memory_bytes=$((${memory_limit%Gi} * 1024 * 1024 * 1024)) ;;
  *) fail "memory limit '$memory_limit' in $deployment: not parsed" ;;
esac
grep -q 'readOnlyRootFilesystem: true' "$deployment" || fail "the Deployment no longer sets readOnlyRootFilesystem: true"
mount_path=$(awk '/volumeMounts:/ { v = 1 } v && /mountPath:/ { print $2; exit }' "$deployment")
[ "$mount_path" = /etc/image-config-webhook/tls ] || fail "the Deployment mounts the Secret at '$mount_path'"

# CRI-O's RuntimeDefault seccomp profile (containers-common), for amd64 and a container with no
# capabilities: the rules that need a capability go, those excluded for a capability stay.
seccomp=$(jq -c '
  {defaultAction, defaultErrnoRet,
   architectures: (.archMap[] | select(.architecture == "SCMP_ARCH_X86_64") | [.architecture] + .subArchitectures),
   syscalls: [.syscalls[]
     | select(((.includes.caps // []) | length) == 0)
     | select(((.includes.arches // []) | length) == 0 or ((.includes.arches // []) | index("amd64")))
     | del(.includes, .excludes, .comment)]}' "$seccomp_source")

# The Secret volume as kubelet's atomic writer lays it out: the files in a timestamped
# directory, `..data` pointing at it, and tls.crt/tls.key as links through `..data`;
# defaultMode 0644, owned by root (the server reads them as 65532).
run_image() { # run_image <tag>: unpack, run as the Deployment does, check, stop
  what=$1
  id=icw-test-$$-$1
  netns=$id
  bundle=$work/bundle-$1
  secret=$work/secret-$1
  certs=$work/certs-$1
  log=$work/webhook-$1.log
  umoci unpack --image "$layout:$1" "$bundle" >/dev/null
  "$binary" certs --out "$certs" >/dev/null
  write_secret() { # write_secret <dir with tls.crt and tls.key>: a new version, swapped in atomically
    local version
    version="..$(date -u +%Y_%m_%d_%H_%M_%S).$(date +%N)"
    mkdir -p "$secret/$version"
    install -m 0644 "$1/tls.crt" "$1/tls.key" "$secret/$version/"
    ln -s "$version" "$secret/..data_tmp"
    mv -T "$secret/..data_tmp" "$secret/..data"
    [ -L "$secret/tls.crt" ] || ln -s ..data/tls.crt "$secret/tls.crt"
    [ -L "$secret/tls.key" ] || ln -s ..data/tls.key "$secret/tls.key"
    find "$secret" -mindepth 1 -maxdepth 1 -type d -name '..*' ! -name "$version" -exec rm -rf {} +
  }
  mkdir -p "$secret"
  write_secret "$certs"

  containers+=("$id")
  ip netns add "$netns"
  ip -n "$netns" link set lo up

  jq --arg secret "$secret" --arg dest "$mount_path" --arg ns "/var/run/netns/$netns" \
    --argjson memory "$memory_bytes" --argjson seccomp "$seccomp" '
    .process.terminal = false
    | .process.capabilities = {bounding: [], effective: [], inheritable: [], permitted: [], ambient: []}
    | .process.noNewPrivileges = true
    | .root.readonly = true
    | .mounts += [{destination: $dest, type: "bind", source: $secret, options: ["rbind", "ro", "nosuid", "nodev", "noexec"]}]
    | .linux.namespaces = [.linux.namespaces[] | if .type == "network" then .path = $ns else . end]
    | .linux.resources.memory.limit = $memory
    | .linux.seccomp = $seccomp
  ' "$bundle/config.json" >"$bundle/config.json.new"
  mv "$bundle/config.json.new" "$bundle/config.json"
  pass "bundle: read-only root, no capabilities, no_new_privs, RuntimeDefault seccomp, memory $memory_limit, Secret ($mount_path, ..data layout) bind-mounted read-only, network namespace $netns"

  # ---------------------------------------------------------------------------------------------
  # 6. Run it, and the checks
  # ---------------------------------------------------------------------------------------------
  in_pod() { ip netns exec "$netns" "$@"; }
  svc=image-config-webhook.image-config-webhook.svc
  https() { # https <ca> <path> [curl args...]: through the Service's DNS name, verified with <ca>
    local ca=$1 path=$2
    shift 2
    in_pod curl -sS --max-time 5 --cacert "$ca" --resolve "$svc:8443:127.0.0.1" "https://$svc:8443$path" "$@"
  }

  say "$runtime run -d --bundle $bundle $id"
  timeout 60 "$runtime" run -d --bundle "$bundle" "$id" >"$log" 2>&1 </dev/null || fail "$runtime run: $(cat "$log")"
  pid=$("$runtime" state "$id" | jq -r .pid)
  [ -n "$pid" ] && [ "$pid" != 0 ] && [ -d "/proc/$pid" ] || fail "no process for container $id"

  deadline=$(($(date +%s) + 30))
  until [ "$(in_pod curl -s -o /dev/null -w '%{http_code}' --max-time 2 http://127.0.0.1:8080/readyz)" = 200 ]; do
    [ -d "/proc/$pid" ] || fail "the webhook exited"
    [ "$(date +%s)" -lt "$deadline" ] || fail "/readyz on 8080 not 200 within 30s"
    sleep 0.2
  done
  pass "GET http://[pod]:8080/readyz: 200"

  # The process: the image's user, nothing more.
  status=$(cat "/proc/$pid/status")
  field() { awk -v f="$1:" '$1 == f { $1 = ""; sub(/^ /, ""); print }' <<<"$status"; }
  [ "$(field Uid | tr -s '\t ' ' ')" = "65532 65532 65532 65532" ] || fail "Uid: $(field Uid)"
  [ "$(field Gid | tr -s '\t ' ' ')" = "65532 65532 65532 65532" ] || fail "Gid: $(field Gid)"
  [ -z "$(field Groups | tr -d '\t ')" ] || fail "supplementary groups: $(field Groups)"
  [ "$(field CapEff)" = 0000000000000000 ] && [ "$(field CapBnd)" = 0000000000000000 ] ||
    fail "capabilities: CapEff $(field CapEff) CapBnd $(field CapBnd)"
  [ "$(field NoNewPrivs)" = 1 ] || fail "NoNewPrivs: $(field NoNewPrivs)"
  [ "$(field Seccomp)" = 2 ] || fail "Seccomp: $(field Seccomp) (2 = filter)"
  cmdline=$(tr '\0' '\n' <"/proc/$pid/cmdline" | jq -R . | jq -sc .)
  [ "$cmdline" = "$(jq -cn --argjson e "$cf_entrypoint" --argjson c "$cf_cmd" '$e + $c')" ] ||
    fail "command line $cmdline is not ENTRYPOINT + CMD"
  pass "process $pid: uid/gid 65532 (all four), no supplementary groups, CapEff/CapBnd 0, NoNewPrivs 1, seccomp filter, argv = ENTRYPOINT + CMD"

  # The root filesystem: mounted read-only, and a write refused (through the container's own root).
  root_opts=$(awk '$5 == "/" { print $6 }' "/proc/$pid/mountinfo" | tail -n1)
  [[ ",$root_opts," == *,ro,* ]] || fail "root mount options: $root_opts"
  tls_opts=$(awk -v d="$mount_path" '$5 == d { print $6 }' "/proc/$pid/mountinfo" | tail -n1)
  [[ ",$tls_opts," == *,ro,* ]] || fail "$mount_path mount options: '$tls_opts'"
  for target in /home/nonroot/probe /tmp/probe /probe; do
    err=$(setpriv --reuid 65532 --regid 65532 --clear-groups touch "/proc/$pid/root$target" 2>&1) &&
      fail "uid 65532 wrote $target in the container"
    [[ "$err" == *"Read-only file system"* ]] || fail "writing $target: $err (expected EROFS)"
  done
  err=$(touch "/proc/$pid/root/probe" 2>&1) && fail "root wrote / in the container"
  [[ "$err" == *"Read-only file system"* ]] || fail "writing / as root: $err"
  pass "root filesystem: mounted ro ($root_opts); writes to /, /tmp, /home/nonroot refused with EROFS (uid 65532 and root); $mount_path mounted ro"

  cgroup_memory=$(awk -F: '$2 == "memory" { print $3 }' "/proc/$pid/cgroup")
  if [ -n "$cgroup_memory" ] && [ -r "/sys/fs/cgroup/memory$cgroup_memory/memory.limit_in_bytes" ]; then
    got_limit=$(cat "/sys/fs/cgroup/memory$cgroup_memory/memory.limit_in_bytes")
  elif [ -r "/sys/fs/cgroup$(awk -F: '$1 == "0" { print $3 }' "/proc/$pid/cgroup")/memory.max" ]; then
    got_limit=$(cat "/sys/fs/cgroup$(awk -F: '$1 == "0" { print $3 }' "/proc/$pid/cgroup")/memory.max")
  fi
  [ "${got_limit:-}" = "$memory_bytes" ] || fail "memory limit: '${got_limit:-unreadable}', want $memory_bytes"
  pass "memory cgroup limit: $got_limit bytes ($memory_limit, the Deployment's)"

  ca=$certs/ca.crt
  code=$(https "$ca" /readyz -o "$work/readyz.body" -w '%{http_code}') || fail "GET https://$svc:8443/readyz"
  body=$(cat "$work/readyz.body")
  [ "$code" = 200 ] && [ "$body" = ok ] || fail "https /readyz: HTTP $code '$body'"
  in_pod curl -sS --max-time 5 -o /dev/null --resolve "$svc:8443:127.0.0.1" "https://$svc:8443/readyz" 2>/dev/null &&
    fail "https /readyz verified without the CA"
  pass "GET https://$svc:8443/readyz: 200 '$body', verified with the mounted certificate's CA (and refused without it)"

  review() { # review <file> -> the response object
    https "$ca" /validate -H 'Content-Type: application/json' --data-binary "@$1" -w '\n%{http_code}'
  }
  out=$(review "$repo/tests/examples/bad-review.json") || fail "POST bad-review.json"
  [ "$(tail -n1 <<<"$out")" = 200 ] || fail "POST bad-review.json: HTTP $(tail -n1 <<<"$out")"
  response=$(sed '$d' <<<"$out" | jq -c .response) || fail "not JSON: $out"
  uid=$(jq -r .request.uid "$repo/tests/examples/bad-review.json")
  jq -e --arg uid "$uid" '.allowed == false and .uid == $uid and .status.code == 422' <<<"$response" >/dev/null ||
    fail "bad-review.json: $response"
  pass "POST https://$svc:8443/validate tests/examples/bad-review.json: \"allowed\":false, code 422, $(jq '.status.details.causes | length' <<<"$response") causes, uid echoed"
  jq '.request.uid = "container-good" | .request.object.spec = {registrySources: {allowedRegistries:
        ["quay.io", "registry.redhat.io", "image-registry.openshift-image-registry.svc:5000"]}}' \
    "$repo/tests/examples/bad-review.json" >"$work/good-review-$1.json"
  out=$(review "$work/good-review-$1.json") || fail "POST a sound review"
  response=$(sed '$d' <<<"$out" | jq -c .response)
  jq -e '.allowed == true and .uid == "container-good"' <<<"$response" >/dev/null || fail "sound review: $response"
  pass "POST https://$svc:8443/validate a sound Image: \"allowed\":true"

  # --log-format json: every line on stdout/stderr is a JSON object (jq -s fails on any other).
  jq -se 'all(.[]; type == "object") and any(.[]; .message == "image-config-webhook ready")' "$log" >/dev/null 2>&1 ||
    fail "the log is not all JSON lines, or has no 'image-config-webhook ready'"
  pass "logs: $(wc -l <"$log") lines so far, every one a JSON object, 'image-config-webhook ready' among them"

  # Rotation as kubelet does it: a new version directory and `..data` swapped; the server reloads.
  "$binary" certs --out "$certs.2" >/dev/null
  write_secret "$certs.2"
  deadline=$(($(date +%s) + 30))
  until https "$certs.2/ca.crt" /readyz -o /dev/null 2>/dev/null; do
    [ -d "/proc/$pid" ] || fail "the webhook exited after the rotation"
    [ "$(date +%s)" -lt "$deadline" ] || fail "the rotated certificate was not served within 30s"
    sleep 0.5
  done
  https "$ca" /readyz -o /dev/null 2>/dev/null && fail "the old certificate is still served"
  pass "certificate rotation through ..data: the new certificate served, same process (pid $pid), old CA refused"

  # SIGTERM, as kubelet sends it after preStop: the server drains and exits well within the
  # Deployment's terminationGracePeriodSeconds.
  grace=$(awk '/terminationGracePeriodSeconds:/ { print $2; exit }' "$deployment")
  "$runtime" kill "$id" TERM
  deadline=$(($(date +%s) + ${grace:-40}))
  while [ "$("$runtime" state "$id" 2>/dev/null | jq -r .status)" = running ]; do
    [ "$(date +%s)" -lt "$deadline" ] || fail "still running ${grace:-40}s after SIGTERM"
    sleep 0.2
  done
  jq -se 'any(.[]; .message == "stopped")' "$log" >/dev/null 2>&1 || fail "no 'stopped' log line after SIGTERM"
  pass "SIGTERM: drained and stopped (within terminationGracePeriodSeconds ${grace:-40}s)"
}

tags=(latest)
[ "$containerfile" = 1 ] && tags+=(containerfile)
for tag in "${tags[@]}"; do
  say "--- image $layout:$tag ---"
  run_image "$tag"
done
what=
if [ "$containerfile" = 1 ]; then
  say "PASS: the image from Debian packages and the Containerfile's own image (buildah) run as the Deployment runs them ($(($(date +%s) - start))s)"
else
  say "PASS: the image built from Debian packages runs as the Deployment runs it ($(($(date +%s) - start))s)"
fi
