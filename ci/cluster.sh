#!/usr/bin/env bash
# Brings the local control plane up or down for manual use (tests start their own clusters).
#   ci/cluster.sh up [NODES]   create cluster "glue-dev" with NODES kwok nodes (default 3)
#   ci/cluster.sh down         delete it
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
bin=$("$root/ci/build-tools.sh")
export KWOK_WORKDIR="$root/.build/kwok" PATH="$bin:$PATH"
name=glue-dev
kubeconfig="$KWOK_WORKDIR/clusters/$name/kubeconfig.yaml"

case "${1:-}" in
up)
  nodes=${2:-3}
  kwokctl get clusters 2>/dev/null | grep -qx "$name" && { echo "cluster $name already up"; } || \
    kwokctl create cluster --name "$name" --runtime binary --wait 2m \
      --kubeconfig "$KWOK_WORKDIR/clusters/$name/kubeconfig-host.yaml" \
      --kube-apiserver-binary "$bin/kube-apiserver" \
      --kube-controller-manager-binary "$bin/kube-controller-manager" \
      --kube-scheduler-binary "$bin/kube-scheduler" \
      --etcd-binary "$bin/etcd" --kwok-controller-binary "$bin/kwok"
  kwokctl scale node --name "$name" --replicas "$nodes"
  kubectl --kubeconfig "$kubeconfig" wait --for=condition=Ready nodes --all --timeout=2m >/dev/null
  kubectl --kubeconfig "$kubeconfig" version 2>/dev/null | grep -i server || true
  kubectl --kubeconfig "$kubeconfig" get nodes -o wide
  echo
  echo "export KUBECONFIG=$kubeconfig"
  ;;
down)
  kwokctl delete cluster --name "$name"
  ;;
*)
  echo "usage: $0 up [NODES] | down" >&2
  exit 2
  ;;
esac
