#!/usr/bin/env bash
# Create the Secrets that the manifests reference, for a LOCAL cluster (kind, minikube, k3d):
# random passwords, a fresh JWT key pair, and connection URLs pointing at the in-cluster Postgres,
# RabbitMQ and Redis of k8s/overlays/local. Existing Secrets are kept (run it again safely); delete one
# to have it regenerated.
#
#   k8s/create-secrets.sh [namespace]        # default namespace: order-platform
#
# Production does not use this script: its Secrets come from the secret manager (External Secrets,
# Sealed Secrets, SOPS...) with the same names and keys, listed in docs/deployment.md.
set -euo pipefail

namespace=${1:-order-platform}
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

# The services, sandboxes, clients and signer, from the typed topology (devtools/topology.py: the standard
# library only, Python 3.11+).
topology() { PYTHONPATH="$root" python3 -c "from devtools import topology; t = topology.load(); $1"; }
read -r -a services < <(topology 'print(" ".join(s.name for s in t.services))')
read -r -a sandboxes < <(topology 'print(" ".join(s.host_name for s in t.sandboxes))')
read -r -a clients < <(topology 'print(" ".join(c.name for c in t.clients))')
read -r signer < <(topology 'print(t.signer.name)')

random() { openssl rand -hex 24; }
exists() { kubectl -n "$namespace" get secret "$1" >/dev/null 2>&1; }
create() {  # create NAME ARGS...: kubectl create secret generic, unless it exists
    local name=$1
    shift
    if exists "$name"; then
        echo "secret/$name exists: kept"
    else
        kubectl -n "$namespace" create secret generic "$name" "$@"
    fi
}
value() {  # value SECRET KEY: read one key of an existing Secret
    kubectl -n "$namespace" get secret "$1" -o "jsonpath={.data.$2}" | base64 -d
}

kubectl get namespace "$namespace" >/dev/null 2>&1 || kubectl create namespace "$namespace"

# Infrastructure credentials first: the service URLs are built from them.
postgres_args=(--from-literal=POSTGRES_PASSWORD="$(random)")
for service in "${services[@]}"; do
    postgres_args+=(--from-literal="${service^^}_DB_PASSWORD=$(random)")
done
create postgres-credentials "${postgres_args[@]}"
create rabbitmq-credentials --from-literal=password="$(random)"
create redis-credentials --from-literal=password="$(random)"

broker_password=$(value rabbitmq-credentials password)
redis_password=$(value redis-credentials password)
broker_url="amqp://platform:${broker_password}@rabbitmq:5672/platform"
redis_url="redis://:${redis_password}@redis:6379/0"

if ! exists jwt-private-key || ! exists jwt-public-key; then
    openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 -out "$work/jwt-private.pem" 2>/dev/null
    openssl pkey -in "$work/jwt-private.pem" -pubout -out "$work/jwt-public.pem"
    kubectl -n "$namespace" delete secret jwt-private-key jwt-public-key --ignore-not-found
    create jwt-private-key --from-file=jwt-private.pem="$work/jwt-private.pem"
    create jwt-public-key --from-file=jwt-public.pem="$work/jwt-public.pem"
fi

# Service-to-service credentials (docs/security.md): one secret per service with client_scopes, kept in
# service-client-credentials; the client gets its own, identity (the one signer) every client's.
client_args=()
for client in "${clients[@]}"; do
    client_args+=(--from-literal="${client^^}=$(random)")
done
create service-client-credentials "${client_args[@]}"

for service in "${services[@]}"; do
    db_password=$(value postgres-credentials "${service^^}_DB_PASSWORD")
    extra=()
    for client in "${clients[@]}"; do
        if [[ $service == "$client" ]]; then
            extra+=(--from-literal=SERVICE_CLIENT_SECRET="$(value service-client-credentials "${client^^}")")
        fi
        if [[ $service == "$signer" ]]; then
            extra+=(--from-literal="SERVICE_CLIENT_SECRET_${client^^}=$(value service-client-credentials "${client^^}")")
        fi
    done
    create "${service//_/-}-secrets" \
        --from-literal=DATABASE_URL="postgres://${service}:${db_password}@postgres:5432/${service}" \
        --from-literal=BROKER_URL="$broker_url" \
        --from-literal=REDIS_URL="$redis_url" \
        --from-literal=SECRET_KEY="$(random)" \
        "${extra[@]}"
done
for sandbox in "${sandboxes[@]}"; do
    create "${sandbox}-secrets" --from-literal=REDIS_URL="$redis_url"
done
create gateway-secrets --from-literal=REDIS_URL="$redis_url"
create flower-secrets --from-literal=BROKER_URL="$broker_url" --from-literal=FLOWER_BASIC_AUTH="admin:$(random)"

echo "Secrets are in namespace $namespace. Flower's login: kubectl -n $namespace get secret flower-secrets -o jsonpath='{.data.FLOWER_BASIC_AUTH}' | base64 -d"
