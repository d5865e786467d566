# linkmcp — build, run and test. Every target works from a fresh clone with a Rust toolchain.
# CARGO_TARGET_DIR is honoured (CI keeps it outside the clone to reuse builds).

CARGO      ?= cargo
TARGET_DIR ?= $(or $(CARGO_TARGET_DIR),target)
MANIFESTS  ?= config/samples/local
LISTEN     ?= 127.0.0.1:8080
DURATION   ?= 10s

# Every target builds the whole workspace, tests included, in one cargo invocation: building
# one package, or only the binaries, would compile shared dependencies again with other
# feature sets (dev-dependencies add features), so `make run` after `make test` rebuilds nothing.

.PHONY: build run test test-integration crds lint fmt bench e2e

build:
	$(CARGO) build --workspace --all-targets

run: build
	$(TARGET_DIR)/debug/linkmcp-server --manifests $(MANIFESTS) --listen $(LISTEN)

test:
	$(CARGO) test --workspace --all-targets

# The official MCP conformance suite against the server (scripts/conformance.sh). The first run
# needs npm: it installs the pinned suite and Node.js 22 into ~/.cache/linkmcp/conformance.
test-integration:
	CARGO="$(CARGO)" CARGO_TARGET_DIR="$(TARGET_DIR)" scripts/conformance.sh

crds: build
	$(TARGET_DIR)/debug/crdgen config/crd charts/linkmcp/crds

lint:
	$(CARGO) fmt --all -- --check
	$(CARGO) clippy --workspace --all-targets -- -D warnings

fmt:
	$(CARGO) fmt --all

# The one release build: figures of a debug build mean nothing. linkmcp-bench starts the release
# server itself (stateless, then with sessions); DURATION is the measured time per phase.
bench:
	$(CARGO) build --release --workspace --bins
	$(TARGET_DIR)/release/linkmcp-bench --manifests $(MANIFESTS) --duration $(DURATION)

# The end-to-end suite against the cluster in KUBECONFIG (tests/e2e/README.md): the controller
# and the server run as local processes, one test at a time.
e2e:
	@command -v kubectl >/dev/null 2>&1 || { \
	  echo "make e2e: kubectl is not on PATH; the suite needs it (see tests/e2e/README.md)."; exit 1; }
	@kubectl get --raw /version --request-timeout=5s >/dev/null 2>&1 || { \
	  echo "make e2e: KUBECONFIG ($${KUBECONFIG:-~/.kube/config}) reaches no Kubernetes cluster."; \
	  echo "Start one (e.g. 'kind create cluster') or point KUBECONFIG at one; see tests/e2e/README.md."; \
	  exit 1; }
	$(CARGO) build --workspace --all-targets
	LINKMCP_BIN_DIR=$(abspath $(TARGET_DIR))/debug $(CARGO) test --workspace --all-targets -- --ignored --test-threads=1 e2e_
