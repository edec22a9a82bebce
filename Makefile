# Targets for building, testing and running the ClearML Kubernetes glue. `make help` lists them.
SHELL := bash
.SHELLFLAGS := -eu -o pipefail -c
GO ?= go
VERSION ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
LDFLAGS := -s -w -X main.version=$(VERSION)
TOOLS_BIN := $(CURDIR)/.build/tools/current/bin
HELM := $(TOOLS_BIN)/helm
IMAGE ?= clearml-glue/clearml-glue:$(VERSION)
# Tests find the control plane binaries here, and the real node's (ci/build-node.sh) there.
export GLUE_TOOLS_BIN := $(TOOLS_BIN)
export GLUE_NODE_BIN := $(CURDIR)/.build/tools/node/bin
# Images built without a container engine (ci/image): OCI layouts and docker-load tarballs.
IMAGE_DIR := $(CURDIR)/.build/image
comma := ,
PLATFORMS ?= linux/$(shell $(GO) env GOARCH)
SOURCE_DATE_EPOCH ?= $(shell git log -1 --format=%ct 2>/dev/null || echo 0)
REVISION ?= $(shell git rev-parse HEAD 2>/dev/null)
CA_CERTS ?= /etc/ssl/certs/ca-certificates.crt
BUSYBOX ?= /bin/busybox
BUSYBOX_IMAGE ?= glue-local/busybox:static
EMULATOR_IMAGE ?= glue-local/clearml-emulator:ci

.DEFAULT_GOAL := help

.PHONY: help
help: ## List the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-14s %s\n", $$1, $$2}'

.PHONY: tools
tools: ## Build the local control plane and helm from the Go module proxy (cached by version)
	@ci/build-tools.sh >/dev/null

.PHONY: node-tools
node-tools: ## Build the real node (kubelet, kube-proxy, containerd, CNI, CoreDNS) from the Go module proxy (cached)
	@ci/build-node.sh >/dev/null

.PHONY: build
build: ## Build bin/clearml-glue
	CGO_ENABLED=0 $(GO) build -trimpath -ldflags '$(LDFLAGS)' -o bin/clearml-glue ./cmd/clearml-glue

.PHONY: test
test: tools node-tools ## Run unit, chart, image and end-to-end tests with -race (local control planes; a real node as root)
	$(GO) test -count=1 -race -timeout 40m ./...
	cd ci/image && $(GO) test -count=1 ./...

# Packages whose TestMain starts a local control plane (localcluster.Main, a real node) are not
# unit tests; -short skips the other control-plane tests (the demo's) and the 30 s outage test.
CLUSTER_TEST_DIRS = $(shell grep -rl 'func TestMain' --include='*_test.go' cmd internal | xargs grep -lE 'localcluster[.]|Main.m, Options' | xargs -n1 dirname | sort -u)

.PHONY: test-unit
test-unit: tools ## Run the unit tests only, no control plane (under a minute on 2 cores; the alert tests use promtool)
	$(GO) test -count=1 -short $$($(GO) list ./... | grep -vxF "$$($(GO) list $(addprefix ./,$(CLUSTER_TEST_DIRS)))")

.PHONY: test-real
test-real: tools node-tools ## The chart on a real node (containerd, runc, kubelet; root): fails if the node cannot run
	GLUE_REAL_NODE=required $(GO) test -count=1 -v -parallel 12 -timeout 30m ./internal/realnode/

.PHONY: lint
lint: tools ## go vet, gofmt, golangci-lint, the chart as ct lint checks it, helm-docs, dashboard, alert rules, actionlint
	$(GO) vet ./...
	@out=$$(gofmt -l cmd internal ci); if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi
	ci/lint-go.sh
	cd ci/image && $(GO) vet ./...
	HELM=$(HELM) ci/lint-chart.sh
	ci/lint-ci.sh
	cd ci/dashboard && $(GO) vet ./... && $(GO) run . -check -out $(CURDIR)/charts/clearml-agent/dashboards/clearml-glue.json
	$(GO) test -count=1 -run 'TestPrometheusRule|TestGrafanaDashboard' ./internal/chart

.PHONY: dashboard
dashboard: ## Regenerate the chart's Grafana dashboard JSON from its code (ci/dashboard)
	cd ci/dashboard && $(GO) run . -out $(CURDIR)/charts/clearml-agent/dashboards/clearml-glue.json

.PHONY: test-rules
test-rules: tools ## promtool check and unit-test the chart's alerts (PrometheusRule); print promtool's output
	$(GO) test -count=1 -v -run 'TestPrometheusRule' ./internal/chart

.PHONY: bench
bench: tools ## Run the benchmarks (see docs/benchmarks.md); the last line is `BENCH {json}`
	@mkdir -p .build/bench
	@test -x .build/tools/benchstat/benchstat || GOBIN=$(CURDIR)/.build/tools/benchstat $(GO) install golang.org/x/perf/cmd/benchstat@latest
	$(GO) test -run '^$$' -bench . -benchmem -count 6 ./internal/podtemplate ./internal/clearml ./internal/monitor | tee .build/bench/micro.txt
	.build/tools/benchstat/benchstat .build/bench/micro.txt
	$(GO) test -v -run '^$$' -bench . -benchtime 1x -timeout 45m ./internal/benchmarks | tee .build/bench/cluster.txt
	@BENCH_RESULTS=$(CURDIR)/.build/bench/micro.txt,$(CURDIR)/.build/bench/cluster.txt BENCH_JSON=$(CURDIR)/.build/bench/bench.json \
		$(GO) test -count 1 -run '^TestReport$$' ./internal/benchmarks >/dev/null
	@echo "BENCH $$(cat .build/bench/bench.json)"

.PHONY: demo
demo: tools ## Bring up the local control plane with simulated nodes and show it
	@echo "demo: building .build/clearml-emulator (the ClearML emulator) and .build/glue-demo"
	@$(GO) build -o .build/clearml-emulator ./cmd/clearml-emulator
	@$(GO) build -o .build/glue-demo ./cmd/glue-demo
	@.build/glue-demo -emulator-bin .build/clearml-emulator $(if $(filter-out 0,$(KEEP)),-keep)

.PHONY: cluster-up
cluster-up: tools ## Start the local control plane "glue-dev" and print its KUBECONFIG
	ci/cluster.sh up

.PHONY: cluster-down
cluster-down: ## Delete the local control plane "glue-dev"
	ci/cluster.sh down

.PHONY: image
image: ## Build the container image with Docker (the same file system as image-oci)
	docker build --build-arg VERSION=$(VERSION) --build-arg REVISION=$(REVISION) \
		--build-arg SOURCE_DATE_EPOCH=$(SOURCE_DATE_EPOCH) -t $(IMAGE) .

.PHONY: image-oci
image-oci: ## Build the controller image without Docker: .build/image/clearml-glue/oci and clearml-glue.tar (docker load)
	@rm -rf $(IMAGE_DIR)/clearml-glue && mkdir -p $(IMAGE_DIR)/clearml-glue
	cd ci/image && $(GO) build -o $(IMAGE_DIR)/image-builder .
	bins=; for p in $(subst $(comma), ,$(PLATFORMS)); do \
		os=$${p%%/*}; arch=$${p#*/}; arch=$${arch%%/*}; out=$(IMAGE_DIR)/clearml-glue/bin/$${p//\//-}/clearml-glue; \
		CGO_ENABLED=0 GOOS=$$os GOARCH=$$arch $(GO) build -trimpath -ldflags '$(LDFLAGS)' -o $$out ./cmd/clearml-glue; \
		bins="$$bins -binary $$p=$$out"; \
	done; \
	SOURCE_DATE_EPOCH=$(SOURCE_DATE_EPOCH) $(IMAGE_DIR)/image-builder build -recipe clearml-glue $$bins \
		-ca-certs $(CA_CERTS) -ref $(IMAGE) -version $(VERSION) -revision $(REVISION) \
		-oci $(IMAGE_DIR)/clearml-glue/oci -docker-tar $(IMAGE_DIR)/clearml-glue.tar

.PHONY: image-emulator
image-emulator: ## Build the ClearML emulator image chart-testing runs (a test fixture, never shipped): .build/image/clearml-emulator.tar
	@rm -rf $(IMAGE_DIR)/clearml-emulator && mkdir -p $(IMAGE_DIR)/clearml-emulator
	cd ci/image && $(GO) build -o $(IMAGE_DIR)/image-builder .
	CGO_ENABLED=0 $(GO) build -trimpath -ldflags '-s -w' -o $(IMAGE_DIR)/clearml-emulator/clearml-emulator ./cmd/clearml-emulator
	@# The controller's recipe with cmd/clearml-emulator as its program (its entrypoint).
	SOURCE_DATE_EPOCH=$(SOURCE_DATE_EPOCH) $(IMAGE_DIR)/image-builder build -recipe clearml-glue \
		-binary linux/$$($(GO) env GOARCH)=$(IMAGE_DIR)/clearml-emulator/clearml-emulator -ca-certs $(CA_CERTS) \
		-ref $(EMULATOR_IMAGE) -oci $(IMAGE_DIR)/clearml-emulator/oci -docker-tar $(IMAGE_DIR)/clearml-emulator.tar

.PHONY: image-busybox
image-busybox: ## Build the helm test image from Debian's busybox-static: .build/image/busybox/oci and busybox.tar
	cd ci/image && $(GO) build -o $(IMAGE_DIR)/image-builder .
	SOURCE_DATE_EPOCH=$(SOURCE_DATE_EPOCH) $(IMAGE_DIR)/image-builder build -recipe busybox \
		-binary linux/$$($(GO) env GOARCH)=$(BUSYBOX) -ref $(BUSYBOX_IMAGE) \
		-oci $(IMAGE_DIR)/busybox/oci -docker-tar $(IMAGE_DIR)/busybox.tar
