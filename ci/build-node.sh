#!/usr/bin/env bash
# Builds the real node of the local control plane from the Go module proxy, module ci/tools/node:
# kubelet and kube-proxy (k8s.io/kubernetes, the control plane's version), containerd 2.x with
# its runc shim and ctr, the CNI plugins bridge, host-local and loopback, and a CoreDNS with the
# plugins a test cluster needs. Cached like ci/build-tools.sh, under a key of that module's
# content and the Go version, so a second run costs nothing. Prints the bin directory on stdout.
# runc and iptables are not built: they come from Debian (apt-get install runc iptables; .ci/run
# installs them), since runc needs cgo and libseccomp.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
mod="$root/ci/tools/node"
key=$( (cat "$mod/go.mod" "$mod/go.sum" "$mod/coredns/main.go"; go env GOVERSION GOOS GOARCH) | sha256sum | cut -c1-12)
bin="$root/.build/tools/node-$key/bin"
k8s_version=v1.37.2
ldflags="-s -w -X k8s.io/component-base/version.gitVersion=$k8s_version -X k8s.io/component-base/version.gitMajor=1 -X k8s.io/component-base/version.gitMinor=37 -X k8s.io/component-base/version.gitTreeState=clean"
containerd_version=$(cd "$mod" && go list -m -f '{{.Version}}' github.com/containerd/containerd/v2)
ldflags="$ldflags -X github.com/containerd/containerd/v2/version.Version=$containerd_version"

declare -A pkgs=(
  [kubelet]=k8s.io/kubernetes/cmd/kubelet
  [kube-proxy]=k8s.io/kubernetes/cmd/kube-proxy
  [containerd]=github.com/containerd/containerd/v2/cmd/containerd
  [containerd-shim-runc-v2]=github.com/containerd/containerd/v2/cmd/containerd-shim-runc-v2
  [ctr]=github.com/containerd/containerd/v2/cmd/ctr
  [coredns]=github.com/clearml-glue/clearml-glue/ci/tools/node/coredns
  [bridge]=github.com/containernetworking/plugins/plugins/main/bridge
  [host-local]=github.com/containernetworking/plugins/plugins/ipam/host-local
  [loopback]=github.com/containernetworking/plugins/plugins/main/loopback
)
order=(kubelet kube-proxy containerd containerd-shim-runc-v2 ctr coredns bridge host-local loopback)

mkdir -p "$bin"
for name in "${order[@]}"; do
  [ -x "$bin/$name" ] && continue
  echo "building $name (a cold build of the real node takes about 15 minutes on 2 cores)" >&2
  start=$SECONDS
  # CGO_ENABLED=0: static binaries; containerd then leaves out the btrfs snapshotter (cgo only).
  (cd "$mod" && CGO_ENABLED=0 go build -trimpath -ldflags "$ldflags" -o "$bin/$name.tmp" "${pkgs[$name]}")
  mv "$bin/$name.tmp" "$bin/$name"
  echo "built $name in $((SECONDS - start))s" >&2
done
ln -sfn "node-$key" "$root/.build/tools/node"
echo "$bin"
