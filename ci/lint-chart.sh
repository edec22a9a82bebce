#!/usr/bin/env bash
# Lints charts/clearml-agent with the checks hosted chart-testing runs (ci/ct.yaml), using local
# tools: helm lint --strict with every ci values file, yamllint, ct's Chart.yaml schema,
# maintainers and version bump (ci/chartmeta), Artifact Hub annotations and the CHANGELOG, and a
# README that helm-docs would leave unchanged. Usage: [HELM=/path/to/helm] ci/lint-chart.sh (default: the
# helm that ci/build-tools.sh builds).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
chart="$root/charts/clearml-agent"
helm=${HELM:-$root/.build/tools/current/bin/helm}
[ -x "$helm" ] || { echo "no helm at $helm: run ci/build-tools.sh or set HELM" >&2; exit 1; }
# The Kubernetes the project is tested on; helm's built-in default is older than the chart's floor.
kube_version=1.37.2
helm_docs_version=v1.14.2
helm_docs="$root/.build/tools/helm-docs/helm-docs"
failed=0
fail() { echo "FAIL: $*" >&2; failed=1; }

echo "== helm lint --strict"
shopt -s nullglob
values=("$chart"/ci/*-values.yaml)
[ ${#values[@]} -gt 0 ] || fail "no ci/*-values.yaml in $chart"
for f in "${values[@]}"; do
  if ! out=$("$helm" lint --strict --kube-version "$kube_version" "$chart" -f "$f" 2>&1); then
    echo "$out" >&2
    fail "helm lint with ${f#"$root"/}"
  else
    echo "ok ${f#"$root"/}"
  fi
done

echo "== yamllint"
command -v yamllint >/dev/null || { echo "yamllint missing: apt-get install -y yamllint" >&2; exit 1; }
yamllint --strict -c "$root/ci/yamllint.yaml" \
  "$chart/Chart.yaml" "$chart/values.yaml" "$chart/ci" "$root/ci/ct.yaml" "$root/ci/yamllint.yaml" ||
  fail "yamllint"

echo "== Chart.yaml"
field() { sed -n "s/^$1:[[:space:]]*//p" "$chart/Chart.yaml" | tr -d "\"'"; }
semver='^(0|[1-9][0-9]*)\.(0|[1-9][0-9]*)\.(0|[1-9][0-9]*)(-[0-9A-Za-z.-]+)?(\+[0-9A-Za-z.-]+)?$'
[ "$(field apiVersion)" = v2 ] || fail "apiVersion is not v2"
[ "$(field name)" = "$(basename "$chart")" ] || fail "name is not the directory name $(basename "$chart")"
[[ "$(field version)" =~ $semver ]] || fail "version '$(field version)' is not semver"
[ -n "$(field appVersion)" ] || fail "appVersion is empty"
# A floor and nothing else: "<", "~", "^", "x" or a second bound would cap newer Kubernetes.
kv=$(field kubeVersion)
[[ "$kv" =~ ^\>=[[:space:]]*v?[0-9]+\.[0-9]+(\.[0-9]+)?(-0)?$ ]] || fail "kubeVersion '$kv' is not a floor only (>=X.Y.Z-0)"
[ -f "$chart/values.schema.json" ] || fail "values.schema.json is missing"
# shellcheck disable=SC2016 # a literal $schema
head -n1 "$chart/values.yaml" | grep -qxF '# yaml-language-server: $schema=values.schema.json' ||
  fail "values.yaml lacks the yaml-language-server schema header"

echo "== Chart.yaml schema, maintainers, version bump, Artifact Hub annotations, CHANGELOG (ci/chartmeta)"
# As ct lint: chart-testing's Chart.yaml schema (strict), maintainers, the version grown since the
# target branch (CT_TARGET_BRANCH, default main; on main itself since the last v* tag); then the
# Artifact Hub annotations against values.yaml and CHANGELOG.md.
(cd "$root" && go run ./ci/chartmeta check -chart "${chart#"$root"/}") || fail "chart metadata (ci/chartmeta)"

echo "== helm-docs"
if [ ! -x "$helm_docs" ]; then
  echo "building helm-docs $helm_docs_version" >&2
  GOBIN="$(dirname "$helm_docs")" go install "github.com/norwoodj/helm-docs/cmd/helm-docs@$helm_docs_version"
fi
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
cp -r "$chart" "$tmp/"
"$helm_docs" --chart-search-root "$tmp" --sort-values-order file --log-level warning
if ! diff -u "$chart/README.md" "$tmp/$(basename "$chart")/README.md"; then
  fail "charts/clearml-agent/README.md is stale; regenerate it: ${helm_docs#"$root"/} --chart-search-root charts --sort-values-order file"
fi

[ "$failed" = 0 ] && echo "chart lint: ok"
exit "$failed"
