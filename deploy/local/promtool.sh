#!/usr/bin/env bash
# Builds promtool (to check deploy/prometheus/alerts.yml) through the Go
# module proxy, and prints its path. The build itself lives in
# deploy/local/k8s-tools.sh (`go mod download` of the pinned Prometheus
# module + `go build ./cmd/promtool`, which avoids `go install`'s
# deprecation check that some proxies refuse); this script is the one entry
# point deps can call for the alert rules.
#
# Usage: deploy/local/promtool.sh            build if missing, print the path
#        deploy/local/promtool.sh check      also run `promtool check rules`
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../.." && pwd)
"$here/k8s-tools.sh" promtool >/dev/null
bin="$("$here/k8s-tools.sh" path)/promtool"
[ -x "$bin" ] || { echo "promtool.sh: $bin was not built" >&2; exit 1; }
echo "$bin"
if [ "${1:-}" = "check" ]; then
  "$bin" check rules "$repo/deploy/prometheus/alerts.yml"
fi
