#!/usr/bin/env bash
# Builds the local control plane (kube-apiserver, kube-controller-manager, kube-scheduler, etcd,
# kwok, kwokctl), helm, prometheus and promtool from the Go module proxy into a cache keyed by the
# tool module's content and the Go version, so a second run costs seconds. Prints the bin
# directory on stdout.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
mod="$root/ci/tools"
key=$( (cat "$mod/go.mod" "$mod/go.sum"; go env GOVERSION GOOS GOARCH) | sha256sum | cut -c1-12)
bin="$root/.build/tools/$key/bin"
k8s_version=v1.37.2
ldflags="-s -w -X k8s.io/component-base/version.gitVersion=$k8s_version -X k8s.io/component-base/version.gitMajor=1 -X k8s.io/component-base/version.gitMinor=37 -X k8s.io/component-base/version.gitTreeState=clean -X helm.sh/helm/v3/internal/version.version=v3.22.0"

declare -A pkgs=(
  [kube-apiserver]=k8s.io/kubernetes/cmd/kube-apiserver
  [kube-controller-manager]=k8s.io/kubernetes/cmd/kube-controller-manager
  [kube-scheduler]=k8s.io/kubernetes/cmd/kube-scheduler
  [etcd]=go.etcd.io/etcd/server/v3
  [kwok]=sigs.k8s.io/kwok/cmd/kwok
  [kwokctl]=sigs.k8s.io/kwok/cmd/kwokctl
  [helm]=helm.sh/helm/v3/cmd/helm
)
# kube-apiserver first: it is the longest and the others share its build cache.
order=(kube-apiserver kube-controller-manager kube-scheduler etcd kwok kwokctl helm)

mkdir -p "$bin"
for name in "${order[@]}"; do
  [ -x "$bin/$name" ] && continue
  echo "building $name (a cold build of the control plane takes about 15 minutes on 2 cores)" >&2
  start=$SECONDS
  (cd "$mod" && CGO_ENABLED=0 go build -trimpath -ldflags "$ldflags" -o "$bin/$name.tmp" "${pkgs[$name]}")
  mv "$bin/$name.tmp" "$bin/$name"
  echo "built $name in $((SECONDS - start))s" >&2
done
# prometheus and promtool (alert rule tests, the monitoring end-to-end test) come from their own
# module, ci/tools/prometheus, cached under its own key and linked into bin: their dependencies
# never move the control plane's, and a Prometheus upgrade rebuilds only them. remove_all_sd
# leaves out the service discoveries (cloud SDKs) the tests never use.
pmod="$mod/prometheus"
pkey=$( (cat "$pmod/go.mod" "$pmod/go.sum"; go env GOVERSION GOOS GOARCH) | sha256sum | cut -c1-12)
pbin="$root/.build/tools/prometheus-$pkey/bin"
mkdir -p "$pbin"
for name in prometheus promtool; do
  if [ ! -x "$pbin/$name" ]; then
    echo "building $name (prometheus about 6 minutes on 2 cores, promtool 1-2)" >&2
    start=$SECONDS
    (cd "$pmod" && CGO_ENABLED=0 go build -trimpath -tags remove_all_sd -ldflags "-s -w" -o "$pbin/$name.tmp" "github.com/prometheus/prometheus/cmd/$name")
    mv "$pbin/$name.tmp" "$pbin/$name"
    echo "built $name in $((SECONDS - start))s" >&2
  fi
  ln -sfn "$pbin/$name" "$bin/$name"
done

# A stable path for Makefile and tests, whatever the key.
ln -sfn "$key" "$root/.build/tools/current"
echo "$bin"
