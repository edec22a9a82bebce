#!/usr/bin/env bash
# `ct install` of charts/clearml-agent on a kind cluster, with every ci/*-values.yaml: each must
# install (helm --wait: the controller Ready, which needs a ClearML login) and pass `helm test`.
# Usage (a kind cluster named $KIND_CLUSTER is the current kubectl context; docker, kind, helm,
# ct and Go on PATH): ci/ct-install.sh [extra ct install flags]. The chart workflow
# (.github/workflows/chart.yaml) runs it after creating the cluster.
#
# What it prepares, all in namespace $CT_NAMESPACE (ct installs every release there):
# - the controller image built here without Docker (make image-oci, tag = the chart's appVersion),
#   docker-loaded and loaded into kind under every reference the values files resolve to
#   (clearml-glue/clearml-glue:<appVersion>, and with global.imageRegistry registry.example.com/...);
#   the helm test image (busybox) likewise; nothing is pulled from registry.example.com;
# - the ClearML emulator (cmd/clearml-emulator, image built by make image-emulator; the product
#   binary does not hold it) behind Service clearml-emulator, accepting the ci values' fake
#   credentials;
# - what the fixtures name but do not create: existing-secrets' Secrets and ServiceAccount,
#   open-source-compatibility's node label fleet=agent-nodes, ConfigMap corporate-ca and Secret
#   git-password; monitoring's ServiceMonitor and PrometheusRule CRDs.
# Every install gets --set for the server URL and credentials (the emulator's), createQueues=true
# (the emulator starts with no queue, where a real server has the queues the values name, even
# "default"; the controller is not Ready while a queue it serves is missing), and extraEnvs
# NO_PROXY=* (open-source-compatibility sets HTTPS_PROXY to a proxy that does not exist, which the
# Kubernetes client would use; this replaces the fixtures' own extraEnvs).
# internal/realnode's TestCIValuesFilesInstallAndPassHelmTest does the same on the local real node.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
chart=charts/clearml-agent
cluster=${KIND_CLUSTER:-chart-testing}
ns=${CT_NAMESPACE:-clearml-ct}
prometheus_operator=${PROMETHEUS_OPERATOR_VERSION:-v0.80.0}
app_version=$(sed -n 's/^appVersion:[[:space:]]*//p' "$chart/Chart.yaml" | tr -d "\"'")
image=clearml-glue/clearml-glue:$app_version
key=CI-ACCESS-KEY
secret=CI-SECRET-KEY
emulator_url=http://clearml-emulator.$ns.svc:8008
emulator_image=glue-local/clearml-emulator:ci

echo "== controller image $image (make image-oci)"
make image-oci IMAGE="$image" >/dev/null
docker load -i .build/image/clearml-glue.tar

echo "== ClearML emulator image $emulator_image (make image-emulator)"
make image-emulator EMULATOR_IMAGE="$emulator_image" >/dev/null
docker load -i .build/image/clearml-emulator.tar

echo "== images the ci values files run"
set_args=(--set "agentk8sglue.apiServerUrlReference=$emulator_url" --set "clearml.agentk8sglueKey=$key"
  --set "clearml.agentk8sglueSecret=$secret" --set "agentk8sglue.createQueues=true"
  --set-json 'agentk8sglue.extraEnvs=[{"name":"NO_PROXY","value":"*"}]')
refs=()
for f in "$chart"/ci/*-values.yaml; do
  while read -r ref; do refs+=("$ref"); done < <(helm template ct "$chart" -f "$f" "${set_args[@]}" --kube-version 1.37.0 |
    sed -n 's/^[[:space:]]*-\{0,1\}[[:space:]]*image:[[:space:]]*"\{0,1\}\([^"]*\)"\{0,1\}[[:space:]]*$/\1/p')
done
mapfile -t refs < <(printf '%s\n' "${refs[@]}" | sort -u)
load=()
for ref in "${refs[@]}"; do
  case "$ref" in
  */clearml-glue/clearml-glue:"$app_version" | clearml-glue/clearml-glue:"$app_version")
    [ "$ref" = "$image" ] || docker tag "$image" "$ref"
    load+=("$ref")
    ;;
  *busybox:*)
    upstream=busybox:${ref##*:}
    docker image inspect "$upstream" >/dev/null 2>&1 || docker pull -q "$upstream"
    [ "$ref" = "$upstream" ] || docker tag "$upstream" "$ref"
    load+=("$ref")
    ;;
  *) echo "not loaded (task image, never pulled by ct install): $ref" ;;
  esac
done
kind load docker-image --name "$cluster" "${load[@]}" "$emulator_image"

echo "== fixtures in namespace $ns"
kubectl create namespace "$ns" --dry-run=client -o yaml | kubectl apply -f -
kubectl label nodes --all fleet=agent-nodes --overwrite
base=https://raw.githubusercontent.com/prometheus-operator/prometheus-operator/$prometheus_operator/example/prometheus-operator-crd
kubectl apply --server-side -f "$base/monitoring.coreos.com_servicemonitors.yaml" -f "$base/monitoring.coreos.com_prometheusrules.yaml"
kubectl apply -n "$ns" -f - <<EOF
apiVersion: apps/v1
kind: Deployment
metadata:
  name: clearml-emulator
spec:
  selector:
    matchLabels: {app: clearml-emulator}
  template:
    metadata:
      labels: {app: clearml-emulator}
    spec:
      containers:
        - name: emulator
          image: $emulator_image
          imagePullPolicy: Never
          args: [-listen, "0.0.0.0:8008", -access-key, $key, -secret-key, $secret]
          ports: [{containerPort: 8008}]
          readinessProbe:
            tcpSocket: {port: 8008}
---
apiVersion: v1
kind: Service
metadata:
  name: clearml-emulator
spec:
  selector: {app: clearml-emulator}
  ports: [{port: 8008, targetPort: 8008}]
---
apiVersion: v1
kind: Secret
metadata:
  name: clearml-glue-credentials
stringData: {agentk8sglue_key: $key, agentk8sglue_secret: $secret}
---
apiVersion: v1
kind: Secret
metadata:
  name: clearml-conf
stringData:
  clearml.conf: "sdk {}"
---
apiVersion: v1
kind: ServiceAccount
metadata:
  name: clearml-glue
---
apiVersion: v1
kind: ConfigMap
metadata:
  name: corporate-ca
data: {}
---
apiVersion: v1
kind: Secret
metadata:
  name: git-password
stringData: {git-password: ci}
EOF
kubectl -n "$ns" rollout status deployment/clearml-emulator --timeout=120s

echo "== ct install"
# ct splits this string on spaces: no value may contain one.
extra=""
for ((i = 0; i < ${#set_args[@]}; i += 2)); do extra+="${set_args[i]}=${set_args[i + 1]} "; done
ct install --config ci/ct.yaml --namespace "$ns" --release-label app.kubernetes.io/instance \
  --helm-extra-set-args "${extra% }" "$@"
