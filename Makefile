# HoneyBee Core. `make run` starts the whole core in one process (embedded
# NATS); `make test` runs every test of every module with the race detector
# (and, when a Docker engine is reachable, builds the images first so that
# the end-to-end tests run against the containers).
#
#   make run                 embedded core: 9001 nodes, 9002 api, 9003 ws, 4222 NATS
#   make test | lint | build
#   make images              FROM-scratch images, built from binaries built here
#   make up [WS_REPLICAS=3]  docker compose: nats, node-gateway, api, ws-proxy xN behind edge
#   make up-cluster          the same on a three-node NATS cluster (JetStream replicas 3)
#   make down                stop the compose stack (volumes are kept)
#   make nats-cli            install the NATS CLI (pinned) into $(GOBIN)

GO      ?= go
MODULES := $(shell sed -n "s,^[[:space:]]*\./,,p" go.work)
BIN     := $(CURDIR)/bin

# testcontainers-go cannot pull its reaper image on machines without a registry.
export TESTCONTAINERS_RYUK_DISABLED ?= true

# Binaries: every main package of the workspace that exists.
CMDS := $(wildcard services/node-gateway/cmd/node-gateway services/api/cmd/api \
	services/ws-proxy/cmd/ws-proxy services/honeybee/cmd/honeybee \
	deploy/edge/cmd/edge deploy/healthcheck)

# Images. The tag and the NATS image are the ones compose.yaml uses.
HONEYBEE_TAG   ?= local
export HONEYBEE_TAG
NATS_IMAGE     ?= honeybee/nats:$(HONEYBEE_TAG)
export NATS_IMAGE
IMAGES         := node-gateway api ws-proxy edge nats
DOCKER_CTX     := $(BIN)/docker
DOCKER_GOARCH  ?= $(shell $(GO) env GOARCH)
VERSION        ?= $(shell git describe --always --dirty 2>/dev/null || echo dev)
# The nats-server module version pinned by services/honeybee/go.mod.
NATS_SERVER_VERSION := $(shell sed -n 's,^[[:space:]]*github.com/nats-io/nats-server/v2 \(v[^ ]*\).*,\1,p' services/honeybee/go.mod | head -1)

# Compose v2 plugin (`docker compose`) or the standalone v1 tool (`docker-compose`).
COMPOSE ?= $(shell if docker compose version >/dev/null 2>&1; then echo "docker compose"; \
	elif command -v docker-compose >/dev/null 2>&1; then echo docker-compose; fi)
WS_REPLICAS ?= 1

# The NATS CLI, pinned (v0.5.1 is not used here).
NATSCLI_VERSION ?= v0.5.0
GOBIN ?= $(shell $(GO) env GOPATH)/bin

.PHONY: all build test test-go lint run images tokens up up-cluster down ps logs nats-cli docker-check bench

all: lint build test

build:
	@mkdir -p $(BIN)
	@for m in $(MODULES); do echo "build $$m"; (cd $$m && CGO_ENABLED=0 $(GO) build -o /dev/null ./...) || exit 1; done
	@for c in $(CMDS); do CGO_ENABLED=0 $(GO) build -o $(BIN)/ ./$$c || exit 1; done
	@echo "binaries in $(BIN)"

# With a Docker engine, build the images first: the e2e tests in
# services/honeybee/e2e run against them (HONEYBEE_E2E=require makes a
# missing image a failure instead of a skip). Without one they skip.
test:
	@if docker info >/dev/null 2>&1 && [ -n "$(COMPOSE)" ]; then \
		$(MAKE) --no-print-directory images && $(MAKE) --no-print-directory test-go HONEYBEE_E2E=require; \
	else \
		echo "no Docker engine or compose tool: the end-to-end tests will skip"; \
		$(MAKE) --no-print-directory test-go; \
	fi

# Every module is tested even when one fails; the failures are listed at the
# end. A module's e2e package runs verbosely, so that what each end-to-end
# test measured (its MEASURED log line) is printed.
test-go:
	@failed=; for m in $(MODULES); do echo "== test $$m"; \
		(cd $$m && export HONEYBEE_E2E=$(HONEYBEE_E2E) HONEYBEE_COMPOSE="$(COMPOSE)" && \
			$(GO) test -race -count=1 -timeout 20m $$($(GO) list ./... | grep -v '/e2e$$') && \
			if [ -d e2e ]; then $(GO) test -race -count=1 -timeout 20m -v ./e2e/; fi) || failed="$$failed $$m"; \
	done; if [ -n "$$failed" ]; then echo "FAILED modules:$$failed"; exit 1; fi

lint:
	@out=$$(gofmt -l $(MODULES)); if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi
	@for m in $(MODULES); do (cd $$m && $(GO) vet ./...) || exit 1; done

# Data goes to ./data (HONEYBEE_DATA_DIR); flags: make run ARGS="-h".
run:
	@mkdir -p $(BIN)
	$(GO) build -o $(BIN)/honeybee ./services/honeybee/cmd/honeybee
	exec $(BIN)/honeybee $(ARGS)

# ---- images ---------------------------------------------------------------

docker-check:
	@docker info >/dev/null 2>&1 || { echo "no Docker engine reachable"; exit 1; }

images: docker-check
	@rm -rf $(DOCKER_CTX) && mkdir -p $(DOCKER_CTX)/data $(DOCKER_CTX)/nats
	@echo "static binaries for linux/$(DOCKER_GOARCH) -> $(DOCKER_CTX)"
	CGO_ENABLED=0 GOOS=linux GOARCH=$(DOCKER_GOARCH) $(GO) build -trimpath -ldflags "-s -w" -o $(DOCKER_CTX)/ \
		./services/node-gateway/cmd/node-gateway ./services/api/cmd/api ./services/ws-proxy/cmd/ws-proxy \
		./deploy/edge/cmd/edge ./deploy/healthcheck
	@echo "nats-server $(NATS_SERVER_VERSION) (pinned by services/honeybee/go.mod)"
	cd services/honeybee && CGO_ENABLED=0 GOOS=linux GOARCH=$(DOCKER_GOARCH) $(GO) build -trimpath -ldflags "-s -w" \
		-o $(DOCKER_CTX)/nats-server github.com/nats-io/nats-server/v2
	cp deploy/nats/*.conf $(DOCKER_CTX)/nats/
	@for i in $(IMAGES); do \
		echo "docker build honeybee/$$i:$(HONEYBEE_TAG)"; \
		v=$(VERSION); [ $$i = nats ] && v=$(NATS_SERVER_VERSION); \
		out=$$(docker build -q --build-arg VERSION=$$v -f deploy/docker/$$i.Dockerfile -t honeybee/$$i:$(HONEYBEE_TAG) $(DOCKER_CTX) 2>&1) \
			|| { echo "$$out"; exit 1; }; \
	done
	@docker image prune -f --filter label=org.opencontainers.image.vendor=HoneyBee >/dev/null # replaced builds
	@docker images --format '{{.Repository}}:{{.Tag}}  {{.Size}}' | grep '^honeybee/' | grep ':$(HONEYBEE_TAG) '

# ---- compose --------------------------------------------------------------

COMPOSE_CHECK = @[ -n "$(COMPOSE)" ] || { echo "neither 'docker compose' nor 'docker-compose' found"; exit 1; }

# The api's and ws-proxy's tokens (role:token per line), made once with
# random values; compose mounts the file as a secret. Mode 0644: the
# services run as uid 65532.
TOKENS := deploy/compose/tokens
$(TOKENS):
	@umask 022; { echo "# role:token, one per line (made by make tokens)"; \
		echo "admin:$$(od -An -N16 -tx1 /dev/urandom | tr -d ' \n')"; \
		echo "read:$$(od -An -N16 -tx1 /dev/urandom | tr -d ' \n')"; } > $@
	@echo "made $@ (admin and read tokens)"

tokens: $(TOKENS)

up: images tokens
	$(COMPOSE_CHECK)
	$(COMPOSE) up -d --scale ws-proxy=$(WS_REPLICAS)
	@echo "nodes -> tcp://localhost:9001   api -> http://localhost:9002   ws -> ws://localhost:9003   NATS -> nats://localhost:4222 (monitoring :8222)"

up-cluster: images tokens
	$(COMPOSE_CHECK)
	$(COMPOSE) --profile cluster --env-file deploy/compose/cluster.env up -d --scale ws-proxy=$(WS_REPLICAS)

down:
	$(COMPOSE_CHECK)
	$(COMPOSE) --profile cluster down --remove-orphans

ps:
	$(COMPOSE_CHECK)
	$(COMPOSE) --profile cluster ps

logs:
	$(COMPOSE_CHECK)
	$(COMPOSE) --profile cluster logs --tail=100

# ---- NATS CLI -------------------------------------------------------------

nats-cli:
	GOBIN=$(GOBIN) $(GO) install github.com/nats-io/natscli/nats@$(NATSCLI_VERSION)
	@echo "installed $(GOBIN)/nats ($(NATSCLI_VERSION)); try: nats -s nats://127.0.0.1:4222 sub 'honeybee.>'"

# ---- benchmark ------------------------------------------------------------

# The whole benchmark of BENCHMARKS.md (loopback only, under 15 minutes);
# BENCH_ARGS go to `load bench`, e.g. BENCH_ARGS=-quick.
bench:
	GO=$(GO) scripts/bench.sh $(BENCH_ARGS)
