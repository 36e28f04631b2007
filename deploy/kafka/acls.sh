#!/usr/bin/env bash
# Applies deploy/kafka/acls.txt to a broker, with the Kafka distribution's own
# ACL tool (kafka.admin.AclCommand, from the same jars as the broker).
#
# Usage: deploy/kafka/acls.sh [--dry-run] BOOTSTRAP [COMMAND_CONFIG]
#   BOOTSTRAP       host:port of the broker
#   COMMAND_CONFIG  a Java client properties file for a principal allowed to
#                   change ACLs (a super user): security.protocol,
#                   sasl.mechanism, sasl.jaas.config (not librdkafka's names)
# Environment:
#   ZL_KAFKA_HOME    the Kafka distribution (its lib/ holds the jars)
#   ZL_TOPIC_PREFIX  topic prefix (default zl.), as the stages are configured
#   ZL_ACLS_FILE     the ACL list (default: acls.txt next to this script)
#   ZL_ACL_COMMAND   the tool's class (default kafka.admin.AclCommand;
#                    org.apache.kafka.tools.AclCommand from Kafka 4.0)
# --dry-run prints the commands instead of running them.
# Adding an ACL that exists is a no-op, so running it twice is harmless.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
dry=0
if [ "${1:-}" = "--dry-run" ]; then dry=1; shift; fi
bootstrap=${1:?usage: deploy/kafka/acls.sh [--dry-run] BOOTSTRAP [COMMAND_CONFIG]}
command_config=${2:-}
prefix=${ZL_TOPIC_PREFIX:-zl.}
file=${ZL_ACLS_FILE:-$here/acls.txt}
class=${ZL_ACL_COMMAND:-kafka.admin.AclCommand}

if [ "$dry" -eq 0 ]; then
  : "${ZL_KAFKA_HOME:?set ZL_KAFKA_HOME to the Kafka distribution}"
  ls "$ZL_KAFKA_HOME"/lib/kafka_2.13-*.jar >/dev/null 2>&1 || { echo "acls: no Kafka jars in $ZL_KAFKA_HOME/lib" >&2; exit 1; }
fi
# A small heap and a quick start: the tool runs once per line.
jvm=(java -Xmx128m -XX:+UseSerialGC -XX:TieredStopAtLevel=1 -cp "${ZL_KAFKA_HOME:-}/lib/*")

n=0
while read -r principal pattern ops resources; do
  case "$principal" in ''|'#'*) continue ;; esac
  args=(--bootstrap-server "$bootstrap" --add --allow-principal "User:$principal" --resource-pattern-type "$pattern")
  [ -n "$command_config" ] && args+=(--command-config "$command_config")
  IFS=, read -r -a oplist <<<"$ops"
  for op in "${oplist[@]}"; do args+=(--operation "$op"); done
  for r in $resources; do
    kind=${r%%:*} name=${r#*:}
    name=${name//\{p\}/$prefix}
    case "$kind" in
      topic) args+=(--topic "$name") ;;
      group) args+=(--group "$name") ;;
      *) echo "acls: $file: unknown resource kind \"$kind\" in: $principal $pattern $ops $resources" >&2; exit 1 ;;
    esac
  done
  n=$((n + 1))
  if [ "$dry" -eq 1 ]; then
    printf '%s\n' "$class ${args[*]}"
  else
    if ! out=$("${jvm[@]}" "$class" "${args[@]}" 2>&1); then
      printf '%s\n' "$out" >&2
      echo "acls: failed: $principal $pattern $ops $resources" >&2
      exit 1
    fi
  fi
done <"$file"
echo "acls: $n ACL lines applied to $bootstrap (prefix $prefix)" >&2
