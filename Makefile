# Hangar — run `make` for the list of targets.
.DEFAULT_GOAL := help
SHELL := bash
GO ?= go
BIN := $(CURDIR)/bin
PKGS := ./...

# Build stamp (internal/version): `make build VERSION=v1.2.3` overrides the git description.
VERSION ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
COMMIT ?= $(shell git rev-parse HEAD 2>/dev/null || echo unknown)
DATE ?= $(shell date -u +%Y-%m-%dT%H:%M:%SZ)
MODULE := github.com/hangarmesh/hangar
LDFLAGS := -s -w -X $(MODULE)/internal/version.Version=$(VERSION) -X $(MODULE)/internal/version.Commit=$(COMMIT) \
	-X $(MODULE)/internal/version.Date=$(DATE) -X $(MODULE)/dataplane/gateway.Version=$(VERSION) \
	-X $(MODULE)/dataplane/upstream.Version=$(VERSION)

.PHONY: help build test test-unit demo bench bench-peers lint fmt tidy clean generate tools fuzz thirdparty conformance images certs ops-tools

help: ## Show this help
	@grep -hE '^[a-zA-Z_-]+:.*?## ' $(MAKEFILE_LIST) | awk 'BEGIN {FS = ":.*?## "}; {printf "  \033[36m%-12s\033[0m %s\n", $$1, $$2}'

build: ## Build hangar-agent, hangar-controlplane, hangarctl, mcp-math and the demo and bench programs into bin/
	@mkdir -p $(BIN)
	$(GO) build -ldflags '$(LDFLAGS)' -o $(BIN)/ ./dataplane/cmd/hangar-agent ./controlplane/cmd/hangar-controlplane ./e2e/cmd/mcp-math ./e2e/cmd/hangar-bench ./e2e/cmd/hangar-demo ./e2e/cmd/hangar-cpbench ./e2e/cmd/hangar-peers ./cli/cmd/hangarctl

test: thirdparty ops-tools ## Run every test (unit, integration, end to end) with the race detector
	$(GO) test -race -count=1 -timeout 20m $(PKGS)

test-unit: ## Run the unit tests only (no processes started)
	$(GO) test -race -count=1 -short $(PKGS)

thirdparty: ## Install the third-party MCP software the e2e tests run against (Node 22 and npm packages pinned in e2e/thirdparty)
	@e2e/thirdparty/install.sh

conformance: thirdparty ## The official MCP conformance suite against the Go SDK's conformance server, directly and through the agent (baseline e2e/conformance/known-failures.txt)
	@mkdir -p $(BIN)
	$(GO) build -ldflags '$(LDFLAGS)' -o $(BIN)/ ./dataplane/cmd/hangar-agent ./e2e/cmd/hangar-conformance github.com/modelcontextprotocol/go-sdk/conformance/everything-server
	$(BIN)/hangar-conformance -bin $(BIN) $(CONFORMANCE_FLAGS)

demo: build ## Run the demo: a control plane on embedded etcd, two agents, two mcp-math upstreams; the primary killed and restarted
	@$(BIN)/hangar-demo -bin $(BIN)

bench: build ## Benchmarks: agent vs direct vs reverse proxy, failover under load; control-plane fan-out to 1,000 and 10,000 agents on one replica, 30,000 on three
	$(BIN)/hangar-bench -bin $(BIN) $(BENCH_FLAGS)
	$(BIN)/hangar-cpbench -agents 1000 -json .bench/cpbench-1000.json $(CPBENCH_FLAGS)
	$(BIN)/hangar-cpbench -agents 10000 -json .bench/cpbench-10000.json $(CPBENCH_FLAGS)
	$(BIN)/hangar-cpbench -agents 30000 -replicas 3 -rounds 3 -json .bench/cpbench-30000x3.json $(CPBENCH_FLAGS)

bench-peers: ## Hangar beside nginx and MCP gateways from npm (installed by e2e/peers/install.sh): added latency, calls/s, failed calls on kill and freeze, RSS (.bench/peers.json)
	@e2e/peers/install.sh
	@mkdir -p $(BIN)
	$(GO) build -ldflags '$(LDFLAGS)' -o $(BIN)/ ./dataplane/cmd/hangar-agent ./e2e/cmd/hangar-peers
	@uptime
	$(BIN)/hangar-peers -bin $(BIN) $(PEERS_FLAGS)
	@uptime

# Fuzz targets as package:Name. Their corpora live in each package's
# testdata/fuzz/Name (plain `go test` replays them).
FUZZ_TARGETS := ./internal/fleetfile:FuzzParse ./dataplane/controlclient:FuzzDecodeState \
	./dataplane/gateway:FuzzHangarCallArgs ./dataplane/gateway:FuzzFrontDoorDecode
FUZZTIME ?= 15s

fuzz: ## Run each fuzz target for FUZZTIME (default 15s); a failing input is written to the package's testdata/fuzz
	@for t in $(FUZZ_TARGETS); do \
		pkg=$${t%%:*}; name=$${t##*:}; echo "== fuzz $$name in $$pkg for $(FUZZTIME)"; \
		$(GO) test -run '^$$' -fuzz "^$$name\$$" -fuzztime $(FUZZTIME) $$pkg || exit 1; \
	done

IMAGES := hangar-agent hangar-controlplane hangarctl mcp-math
images: ## Build the container images (needs Docker): $(IMAGES), tagged $(VERSION)
	for t in $(IMAGES); do \
	  docker build -f deploy/docker/Dockerfile --target $$t --build-arg VERSION=$(VERSION) \
	    --build-arg COMMIT=$(COMMIT) --build-arg DATE=$(DATE) -t $$t:$(VERSION) . || exit 1; \
	done

CERTS_DIR ?= deploy/kubernetes/overlays/dev/secrets
certs: ## Generate a throw-away dev CA, certificates and tokens into $(CERTS_DIR) (docs/certificates.md)
	scripts/gen-dev-certs.sh $(CERTS_DIR)

ops-tools: ## Install promtool if missing (the tests of deploy/prometheus and deploy/grafana need it)
	@command -v promtool >/dev/null 2>&1 || scripts/install-promtool.sh || \
	  echo "warning: promtool could not be installed; the Prometheus rule tests will fail (see scripts/install-promtool.sh)"

STATICCHECK := honnef.co/go/tools/cmd/staticcheck@v0.8.2

lint: ## go vet, staticcheck, gofmt and go mod tidy checks
	$(GO) vet $(PKGS)
	$(GO) run $(STATICCHECK) $(PKGS)
	@out=$$(gofmt -l $$(git ls-files '*.go')); if [ -n "$$out" ]; then echo "gofmt would change:"; echo "$$out"; exit 1; fi
	@$(GO) mod tidy -diff >/dev/null || { echo "go.mod/go.sum are not tidy: run 'go mod tidy'"; exit 1; }

TOOLS := $(CURDIR)/.tools
$(TOOLS)/buf:
	GOBIN=$(TOOLS) $(GO) install github.com/bufbuild/buf/cmd/buf@v1.75.0
$(TOOLS)/protoc-gen-go:
	GOBIN=$(TOOLS) $(GO) install google.golang.org/protobuf/cmd/protoc-gen-go@v1.36.12
$(TOOLS)/protoc-gen-go-grpc:
	GOBIN=$(TOOLS) $(GO) install google.golang.org/grpc/cmd/protoc-gen-go-grpc@v1.6.2

tools: $(TOOLS)/buf $(TOOLS)/protoc-gen-go $(TOOLS)/protoc-gen-go-grpc ## Install buf and the protoc plugins into .tools/

generate: tools ## Lint proto/ and regenerate the committed Go code from it
	cd $(CURDIR) && $(TOOLS)/buf lint && $(TOOLS)/buf generate

fmt: ## Format the Go code
	gofmt -w $$(git ls-files '*.go')

tidy: ## Tidy go.mod and go.sum
	$(GO) mod tidy

clean: ## Remove build output
	rm -rf $(BIN) .demo .bench .conformance
