#!/usr/bin/env bash
# Installs the tools that check the deployment artifacts, built from source
# through the Go module proxy (no prebuilt binaries are downloaded):
#
#   kubeconform  validates deploy/k8s manifests against Kubernetes schemas
#   promtool     checks deploy/prometheus/prometheus.yml and alerts.yml
#
# Usage: deploy/local/k8s-tools.sh [kubeconform|promtool|all]   (default all)
#        deploy/local/k8s-tools.sh path     prints the bin directory
# Binaries go to $ZL_CACHE_DIR/k8s-tools/bin; a tool already there at the
# pinned version is not rebuilt. Quick when everything is present.
#
# Why `go mod download` + `go build` rather than `go install mod@ver`: the
# Go command's deprecation check may be refused on some networks; building
# from the downloaded module directory avoids it, as deploy/local/deps does
# for Kubo.
#
# Offline note: kubeconform's Kubernetes JSON schemas are fetched from the
# network at validation time. Without it, tests/integration/
# test_deploy_artifacts.py validates the manifests structurally in Python
# and says so; with a schema directory (ZL_KUBECONFORM_SCHEMAS, a local copy
# of the kubernetes-json-schema layout) it also runs kubeconform.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=versions.sh
. "$here/versions.sh"

KUBECONFORM_VERSION=${KUBECONFORM_VERSION:-v0.7.0}
# Prometheus v3 is published to the module proxy as v0.3xx.y (v0.304.x =
# Prometheus 3.4.x).
PROMETHEUS_MODULE_VERSION=${PROMETHEUS_MODULE_VERSION:-v0.304.2}
BIN="$ZL_CACHE_DIR/k8s-tools/bin"

die() { echo "k8s-tools: $*" >&2; exit 1; }

build_from_module() { # module@version package-dir output-name
  local modver=$1 pkg=$2 out=$3 dir
  command -v go >/dev/null || die "go is missing: install Go (see README, 'make deps')"
  dir=$(go mod download -json "$modver" | sed -n 's/.*"Dir": "\(.*\)".*/\1/p')
  [ -n "$dir" ] && [ -d "$dir" ] || die "go mod download $modver failed (is the Go module proxy reachable?)"
  mkdir -p "$BIN"
  (cd "$dir" && GOFLAGS=-mod=mod go build -trimpath -o "$BIN/$out.tmp" "$pkg") || die "building $out failed"
  mv "$BIN/$out.tmp" "$BIN/$out"
  echo "$modver" > "$BIN/$out.version"
}

have() { # name version
  [ -x "$BIN/$1" ] && [ "$(cat "$BIN/$1.version" 2>/dev/null)" = "$2" ]
}

kubeconform() {
  local mv="github.com/yannh/kubeconform@$KUBECONFORM_VERSION"
  have kubeconform "$mv" || build_from_module "$mv" ./cmd/kubeconform kubeconform
  echo "kubeconform: $BIN/kubeconform"
}

promtool() {
  local mv="github.com/prometheus/prometheus@$PROMETHEUS_MODULE_VERSION"
  have promtool "$mv" || build_from_module "$mv" ./cmd/promtool promtool
  echo "promtool: $BIN/promtool"
}

case "${1:-all}" in
  kubeconform) kubeconform ;;
  promtool) promtool ;;
  all) kubeconform; promtool ;;
  path) echo "$BIN" ;;
  *) die "unknown argument $1 (kubeconform, promtool, all, path)" ;;
esac
