# linkmcp — build, run and test. Every target works from a fresh clone with a Rust toolchain.
# CARGO_TARGET_DIR is honoured (CI keeps it outside the clone to reuse builds).

CARGO      ?= cargo
TARGET_DIR ?= $(or $(CARGO_TARGET_DIR),target)
MANIFESTS  ?= config/samples/local
LISTEN     ?= 127.0.0.1:8080
DURATION   ?= 10s
# make soak: sessions held open at once, and for how long the calls flow through them.
SESSIONS   ?= 10000
SOAK_DURATION ?= 10m
# The figures the e2e tests measure, printed at the end of `make e2e`.
E2E_REPORT ?= $(abspath $(TARGET_DIR))/e2e-figures.txt

# Every target builds the whole workspace, tests included, in one cargo invocation: building
# one package, or only the binaries, would compile shared dependencies again with other
# feature sets (dev-dependencies add features), so `make run` after `make test` rebuilds nothing.

.PHONY: build run test test-integration crds lint fmt bench soak fuzz e2e images chart-check release-check

build:
	$(CARGO) build --workspace --all-targets

run: build
	$(TARGET_DIR)/debug/linkmcp-server --manifests $(MANIFESTS) --listen $(LISTEN)

# scripts/test-services.sh checks, installs and starts what the tests talk to (PostgreSQL,
# Redis, RabbitMQ with its management API, clickhouse-server, moto, nx-27017); the PyPI tools
# it installs are linked into ~/.cache/linkmcp/bin. --no-fail-fast: every crate's tests run
# even when one fails, so one run shows every failure.
TOOLS_PATH := $(HOME)/.cache/linkmcp/bin

test:
	scripts/test-services.sh
	PATH="$(TOOLS_PATH):$$PATH" $(CARGO) test --workspace --all-targets --no-fail-fast

# The official MCP conformance suite against the server (scripts/conformance.sh). The first run
# needs npm: it installs the pinned suite and Node.js 22 into ~/.cache/linkmcp/conformance.
test-integration:
	CARGO="$(CARGO)" CARGO_TARGET_DIR="$(TARGET_DIR)" scripts/conformance.sh
	CARGO="$(CARGO)" CARGO_TARGET_DIR="$(TARGET_DIR)" scripts/chart-check.sh && CARGO="$(CARGO)" CARGO_TARGET_DIR="$(TARGET_DIR)" scripts/image-check.sh
	CARGO="$(CARGO)" CARGO_TARGET_DIR="$(TARGET_DIR)" scripts/tansu.sh

crds: build
	$(TARGET_DIR)/debug/crdgen config/crd charts/linkmcp/crds

lint:
	$(CARGO) fmt --all -- --check
	$(CARGO) clippy --workspace --all-targets -- -D warnings

fmt:
	$(CARGO) fmt --all

# The one release build: figures of a debug build mean nothing. linkmcp-bench starts the release
# server itself (stateless, then with sessions); DURATION is the measured time per phase.
# read_latency times one read tool per backend whose server is reachable (it skips the others);
# selection_bench checks tool selection's token saving and recall on crates/factory/benches.
bench:
	$(CARGO) build --release --workspace --bins --examples
	$(TARGET_DIR)/release/linkmcp-bench --manifests $(MANIFESTS) --duration $(DURATION)
	$(TARGET_DIR)/release/examples/read_latency
	$(TARGET_DIR)/release/examples/selection_bench

# The soak (release build, as bench): SESSIONS MCP sessions opened, then held for SOAK_DURATION
# with tools/call flowing through all of them; prints the server's RSS curve, the errors and
# the RSS after every session is closed.
soak:
	$(CARGO) build --release --workspace --bins
	$(TARGET_DIR)/release/linkmcp-bench --manifests $(MANIFESTS) soak --sessions $(SESSIONS) --duration $(SOAK_DURATION)

# Coverage-guided fuzzing (scripts/fuzz.sh: cargo fuzz on nightly, its own target dir): each
# target of fuzz/ for FUZZ_SECONDS, from the committed seeds and the corpus earlier runs grew.
# A crash stops it with the input saved under fuzz/artifacts/.
FUZZ_SECONDS ?= 300

fuzz:
	FUZZ_SECONDS=$(FUZZ_SECONDS) scripts/fuzz.sh

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
	@rm -f $(E2E_REPORT)
	@LINKMCP_BIN_DIR=$(abspath $(TARGET_DIR))/debug LINKMCP_E2E_REPORT=$(E2E_REPORT) \
	  $(CARGO) test --workspace --all-targets -- --ignored --test-threads=1 e2e_; status=$$?; \
	  echo; echo "== e2e figures ($(E2E_REPORT))"; cat $(E2E_REPORT) 2>/dev/null || echo "(none recorded)"; \
	  exit $$status

# Container images of the controller and the server (images/Dockerfile), with docker (a running
# daemon) or buildah. No registry is reachable from CI: scripts/image-check.sh (in
# test-integration) proves the image shape with umoci instead.
VERSION        := $(shell sed -n '/^\[workspace.package\]/,/^\[/s/^version *= *"\(.*\)"/\1/p' Cargo.toml)
IMAGE_REGISTRY ?= ghcr.io/linkmcp
IMAGE_TAG      ?= $(VERSION)

images:
	@if command -v docker >/dev/null 2>&1 && docker info >/dev/null 2>&1; then builder="docker build"; \
	elif command -v buildah >/dev/null 2>&1; then builder="buildah build"; \
	else echo "make images: needs docker (with a running daemon) or buildah, and neither is usable here."; \
	  echo "Install one (e.g. apt-get install buildah), or run scripts/image-check.sh to build and check OCI images with umoci."; \
	  exit 1; fi; \
	for component in controller server; do \
	  $$builder -f images/Dockerfile --target $$component \
	    --build-arg VERSION=$(VERSION) --build-arg REVISION=$$(git rev-parse HEAD 2>/dev/null || echo unknown) \
	    -t $(IMAGE_REGISTRY)/linkmcp-$$component:$(IMAGE_TAG) . || exit 1; \
	done

# Helm chart and kustomize checks (scripts/chart-check.sh; fetches the pinned Helm once).
chart-check:
	CARGO="$(CARGO)" CARGO_TARGET_DIR="$(TARGET_DIR)" scripts/chart-check.sh

# Runs every generator and fails on any drift from what is checked in: the CRDs (config/crd and
# the chart's copy) and the OpenAPI document, then the chart checks.
release-check: crds
	UPDATE_OPENAPI=1 $(CARGO) test --workspace --all-targets -- openapi
	@git diff --exit-code --stat -- config/crd charts/linkmcp/crds docs/openapi.json || { \
	  echo "make release-check: generated files differ from the checked-in ones (diff above): commit the regenerated files."; exit 1; }
	@untracked=$$(git ls-files --others --exclude-standard -- 'config/crd/linkmcp.io_*' 'charts/linkmcp/crds/*' docs/openapi.json); \
	  if [ -n "$$untracked" ]; then echo "make release-check: generated but not checked in: $$untracked"; exit 1; fi
	CARGO="$(CARGO)" CARGO_TARGET_DIR="$(TARGET_DIR)" scripts/chart-check.sh
