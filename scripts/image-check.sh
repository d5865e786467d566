#!/usr/bin/env bash
# Proves the images without a registry or a container daemon (issue 7): builds an OCI image of
# linkmcp-controller and of linkmcp-server from scratch with umoci (Debian package `umoci`),
# shaped like images/Dockerfile's runtime stage — the stripped binary in /usr/local/bin, the C
# runtime it links (from ldd), CA certificates, /etc/passwd with nonroot 65532, no shell — and
# then checks each image's config (user 65532:65532, entrypoint, OCI labels), that the layout
# holds no shell, and that the unpacked image runs `--version` and prints the workspace version.
# Environment: CARGO, CARGO_TARGET_DIR (as the Makefile passes them); IMAGE_PROFILE=debug
# (default; builds the workspace first) or release (uses target/release as it is);
# IMAGE_OUT=DIR keeps the OCI layout there instead of a temp folder.
set -euo pipefail

cd "$(dirname "$0")/.."
CARGO=${CARGO:-cargo}
TARGET_DIR=${CARGO_TARGET_DIR:-target}
PROFILE=${IMAGE_PROFILE:-debug}

fail() { echo "image-check: FAIL: $*" >&2; exit 1; }
step() { echo "image-check: $*"; }

for tool in umoci jq ldd strip; do
  command -v $tool >/dev/null || fail "$tool is needed (apt-get install umoci jq binutils)"
done

VERSION=$(sed -n '/^\[workspace.package\]/,/^\[/s/^version *= *"\(.*\)"/\1/p' Cargo.toml)
REVISION=$(git rev-parse HEAD 2>/dev/null || echo unknown)
SOURCE=https://github.com/linkmcp/linkmcp

if [[ $PROFILE == debug ]]; then
  "$CARGO" build --workspace --all-targets >/dev/null 2>&1 || "$CARGO" build --workspace --all-targets
fi
BIN_DIR=$TARGET_DIR/$PROFILE

WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT
LAYOUT=${IMAGE_OUT:-$WORK/oci}
rm -rf "$LAYOUT"
umoci init --layout "$LAYOUT"

# The root filesystem of one image: the binary, its shared libraries, the files distroless
# ships (passwd/group with nonroot, CA bundle, a writable /tmp).
rootfs() {
  local bin=$1 root=$2
  install -d -m 0755 "$root/usr/local/bin" "$root/etc" "$root/etc/ssl/certs"
  install -d -m 1777 "$root/tmp"
  strip -o "$root/usr/local/bin/$bin" "$BIN_DIR/$bin"
  chmod 0755 "$root/usr/local/bin/$bin"
  ldd "$BIN_DIR/$bin" | grep -o '/[^ ]*' | sort -u | while read -r lib; do
    install -d "$root$(dirname "$lib")"
    cp -L "$lib" "$root$lib"
  done
  printf 'root:x:0:0:root:/root:/sbin/nologin\nnonroot:x:65532:65532:nonroot:/home/nonroot:/sbin/nologin\n' >"$root/etc/passwd"
  printf 'root:x:0:\nnonroot:x:65532:\n' >"$root/etc/group"
  if [[ -f /etc/ssl/certs/ca-certificates.crt ]]; then
    cp /etc/ssl/certs/ca-certificates.crt "$root/etc/ssl/certs/ca-certificates.crt"
  fi
}

config_of() {
  local tag=$1 manifest config
  manifest=$(jq -r --arg t "$tag" '.manifests[] | select(.annotations["org.opencontainers.image.ref.name"] == $t) | .digest' "$LAYOUT/index.json")
  config=$(jq -r '.config.digest' "$LAYOUT/blobs/${manifest/://}")
  cat "$LAYOUT/blobs/${config/://}"
}

for component in controller server; do
  bin=linkmcp-$component
  [[ -x $BIN_DIR/$bin ]] || fail "$BIN_DIR/$bin is missing (IMAGE_PROFILE=$PROFILE)"
  umoci new --image "$LAYOUT:$component"
  umoci unpack --rootless --image "$LAYOUT:$component" "$WORK/bundle-$component" >/dev/null
  rootfs "$bin" "$WORK/bundle-$component/rootfs"
  umoci repack --image "$LAYOUT:$component" "$WORK/bundle-$component"
  args=(--config.user 65532:65532
        --config.entrypoint "/usr/local/bin/$bin"
        --config.workingdir /
        --config.exposedports 8080/tcp
        --config.env PATH=/usr/local/bin
        --config.env SSL_CERT_FILE=/etc/ssl/certs/ca-certificates.crt
        --config.label "org.opencontainers.image.source=$SOURCE"
        --config.label "org.opencontainers.image.version=$VERSION"
        --config.label "org.opencontainers.image.revision=$REVISION"
        --config.label "org.opencontainers.image.licenses=Apache-2.0"
        --config.label "org.opencontainers.image.title=$bin")
  [[ $component == controller ]] && args+=(--config.cmd run)
  umoci config --image "$LAYOUT:$component" "${args[@]}"
  umoci gc --layout "$LAYOUT"

  # The config, as a runtime reads it.
  cfg=$(config_of "$component")
  check() {
    local what=$1 filter=$2 want=$3 got
    got=$(jq -c "$filter" <<<"$cfg")
    [[ $got == "$want" ]] || fail "$bin: $what is $got, want $want"
  }
  check "user" '.config.User' '"65532:65532"'
  check "entrypoint" '.config.Entrypoint' "[\"/usr/local/bin/$bin\"]"
  check "source label" '.config.Labels["org.opencontainers.image.source"]' "\"$SOURCE\""
  check "version label" '.config.Labels["org.opencontainers.image.version"]' "\"$VERSION\""
  check "licence label" '.config.Labels["org.opencontainers.image.licenses"]' '"Apache-2.0"'
  check "os/arch" '[.os, .architecture]' '["linux","amd64"]'
  check "port" '.config.ExposedPorts | keys' '["8080/tcp"]'

  # What a runtime unpacks: no shell, and the binary runs as it is.
  rm -rf "$WORK/run-$component"
  umoci unpack --rootless --image "$LAYOUT:$component" "$WORK/run-$component" >/dev/null
  root=$WORK/run-$component/rootfs
  for shell in bin/sh bin/bash usr/bin/sh busybox; do
    [[ ! -e $root/$shell ]] || fail "$bin: the image holds /$shell"
  done
  if [[ $(id -u) == 0 ]] && command -v chroot >/dev/null; then
    out=$(chroot --userspec=65532:65532 "$root" "/usr/local/bin/$bin" --version) \
      || fail "$bin --version does not run inside the image"
    [[ $out == "$bin $VERSION" ]] || fail "$bin --version printed '$out', want '$bin $VERSION'"
    ran="runs as 65532: '$out'"
  else
    out=$("$root/usr/local/bin/$bin" --version)
    [[ $out == "$bin $VERSION" ]] || fail "$bin --version printed '$out'"
    ran="'$out' (not root: run outside a chroot)"
  fi
  size=$(du -sh "$root" | cut -f1)
  step "$bin: user 65532:65532, entrypoint /usr/local/bin/$bin, OCI labels, no shell, $size, $ran"
done
[[ -n ${IMAGE_OUT:-} ]] && step "OCI layout kept in $LAYOUT (tags: controller, server)"
step "OK"
