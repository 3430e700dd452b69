#!/usr/bin/env bash
# Apply the s115hub ACL table (deploy/security/README.md) to an Apache Kafka cluster.
# Partners may write only their inbound topic; tasking groups may read only their own topics.
#
#   acls.sh --config county.yaml --bootstrap host:9093 --command-config admin.properties \
#           [--prefix s115] [--dry-run] [--revoke-partner ID]
#
# Needs kafka-acls.sh on PATH (Apache Kafka's bin/) and python3 with PyYAML to read the county.
set -euo pipefail

config="" bootstrap="" admin="" prefix="s115" dry=0 revoke=""
while [[ $# -gt 0 ]]; do
  case "$1" in
    --config) config="$2"; shift 2 ;;
    --bootstrap) bootstrap="$2"; shift 2 ;;
    --command-config) admin="$2"; shift 2 ;;
    --prefix) prefix="$2"; shift 2 ;;
    --dry-run) dry=1; shift ;;
    --revoke-partner) revoke="$2"; shift 2 ;;
    *) echo "unknown argument: $1" >&2; exit 2 ;;
  esac
done
[[ -n "$config" && -n "$bootstrap" ]] || { echo "need --config and --bootstrap" >&2; exit 2; }

ids() {  # ids of partners or groups in county.yaml
  python3 -c 'import sys, yaml; print("\n".join(x["id"] for x in yaml.safe_load(open(sys.argv[1]))[sys.argv[2]]))' "$config" "$1"
}

acl() {  # acl add|remove <kafka-acls.sh arguments>
  local action="$1"; shift
  local cmd=(kafka-acls.sh --bootstrap-server "$bootstrap" ${admin:+--command-config "$admin"} "--$action" --force "$@")
  if (( dry )); then printf '%q ' "${cmd[@]}"; echo; else "${cmd[@]}"; fi
}

topic() { echo "--topic $prefix.$1"; }

if [[ -n "$revoke" ]]; then
  acl remove --allow-principal "User:partner-$revoke" --operation Write --operation Describe $(topic "inbound.$revoke")
  echo "# then: kafka-configs.sh --bootstrap-server $bootstrap --alter --delete-config SCRAM-SHA-512 --entity-type users --entity-name partner-$revoke"
  exit 0
fi

# Partners: write (and describe, which producers need for metadata) their inbound topic only.
for p in $(ids partners); do
  acl add --allow-principal "User:partner-$p" --operation Write --operation Describe $(topic "inbound.$p")
  echo "# kafka-configs.sh --bootstrap-server $bootstrap --alter --add-config 'SCRAM-SHA-512=[password=<from your secret store>]' --entity-type users --entity-name partner-$p"
done

# Tasking groups: read their delivery and hot-spot topics only, with their own consumer groups.
for g in $(ids groups); do
  acl add --allow-principal "User:group-$g" --operation Read --operation Describe $(topic "deliver.$g")
  acl add --allow-principal "User:group-$g" --operation Read --operation Describe $(topic "hotspots.$g")
  acl add --allow-principal "User:group-$g" --operation Read --group "group-$g" --resource-pattern-type prefixed
  echo "# kafka-configs.sh --bootstrap-server $bootstrap --alter --add-config 'SCRAM-SHA-512=[password=<from your secret store>]' --entity-type users --entity-name group-$g"
done

# Hub services (prefixed patterns cover every feed, partner and group).
pre=(--resource-pattern-type prefixed)
acl add --allow-principal User:s115-ingest --operation Read --operation Describe --topic "$prefix.inbound." "${pre[@]}"
acl add --allow-principal User:s115-ingest --operation Read --group "$prefix.ingest-inbound"
acl add --allow-principal User:s115-ingest --operation Write --operation Describe --topic "$prefix.raw." "${pre[@]}"
acl add --allow-principal User:s115-ingest --operation Write --operation Describe $(topic rejected)
acl add --allow-principal User:s115-ingest --operation Read --operation Describe $(topic config)
acl add --allow-principal User:s115-ingest --operation Create --operation Describe --topic "$prefix." "${pre[@]}"

acl add --allow-principal User:s115-depersonalise --operation Read --operation Describe --topic "$prefix.raw." "${pre[@]}"
acl add --allow-principal User:s115-depersonalise --operation Read --group "$prefix.depersonalise"
acl add --allow-principal User:s115-depersonalise --operation Write --operation Describe $(topic shared)
acl add --allow-principal User:s115-depersonalise --operation Write --operation Describe $(topic rejected)
# withheld and generalised records are accounted for on the audit chain (issue 16)
acl add --allow-principal User:s115-depersonalise --operation Write --operation Describe $(topic audit.facts)
acl add --allow-principal User:s115-depersonalise --operation Read --operation Describe $(topic config)

acl add --allow-principal User:s115-router --operation Read --operation Describe $(topic shared)
acl add --allow-principal User:s115-router --operation Read --group "$prefix.router"
acl add --allow-principal User:s115-router --operation Write --operation Describe --topic "$prefix.deliver." "${pre[@]}"
acl add --allow-principal User:s115-router --operation Write --operation Describe --topic "$prefix.hotspots." "${pre[@]}"
acl add --allow-principal User:s115-router --operation Read --operation Describe $(topic config)
# The router reads back what it delivered (dedupe ledger, the group web page and export).
acl add --allow-principal User:s115-router --operation Read --topic "$prefix.deliver." "${pre[@]}"
acl add --allow-principal User:s115-router --operation Read --topic "$prefix.hotspots." "${pre[@]}"
acl add --allow-principal User:s115-router --operation Read --operation Write --operation Describe $(topic router.hotspot-state)
# The router hosts the single audit chainer: the only principal that may write s115.audit.
acl add --allow-principal User:s115-router --operation Read --operation Write --operation Describe $(topic audit.facts)
acl add --allow-principal User:s115-router --operation Read --operation Write --operation Describe $(topic audit)
acl add --allow-principal User:s115-router --operation Read --group "$prefix.audit-chainer"
# Config facts: only from the officer's own topic (services/router/audit_sink.py, issue 12).
acl add --allow-principal User:s115-router --operation Read --operation Describe $(topic audit.officer)
# The stage runner dead-letters what a stage cannot process (issue 12).
acl add --allow-principal User:s115-router --operation Write --operation Describe $(topic rejected)

acl add --allow-principal User:s115-officer --operation Write --operation Read --operation Describe $(topic config)
acl add --allow-principal User:s115-officer --operation Read --operation Write --operation Describe $(topic rejected)
acl add --allow-principal User:s115-officer --operation Read --operation Describe $(topic audit)
# Configuration changes are audited: the CLI writes a fact, the chainer chains it.
acl add --allow-principal User:s115-officer --operation Write --operation Describe $(topic audit.facts)
acl add --allow-principal User:s115-officer --operation Write --operation Describe $(topic audit.officer)
