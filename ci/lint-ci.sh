#!/usr/bin/env bash
# Lints the GitHub Actions workflows (.github/workflows) with actionlint, built from the Go module
# proxy and cached in .build/tools/actionlint-<version>. actionlint checks the run: scripts with
# ShellCheck when that is installed (apt-get install shellcheck; .ci/run installs it).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
version=v1.7.12
bin="$root/.build/tools/actionlint-$version/actionlint"
if [ ! -x "$bin" ]; then
  echo "building actionlint $version" >&2
  GOBIN="$(dirname "$bin")" go install "github.com/rhysd/actionlint/cmd/actionlint@$version"
fi
cd "$root"
command -v shellcheck >/dev/null || echo "note: shellcheck not installed; actionlint skips the run: scripts" >&2
echo "== actionlint"
"$bin" -no-color
echo "workflows: ok"
