# HoneyBee Core. `make run` starts the whole core in one process (embedded
# NATS); `make test` runs every test of every module with the race detector.

GO      ?= go
MODULES := $(shell sed -n "s,^[[:space:]]*\./,,p" go.work)
BIN     := $(CURDIR)/bin

# testcontainers-go cannot pull its reaper image on machines without a registry.
export TESTCONTAINERS_RYUK_DISABLED ?= true

.PHONY: all build test lint run

all: lint build test

build:
	@mkdir -p $(BIN)
	@for m in $(MODULES); do echo "build $$m"; (cd $$m && CGO_ENABLED=0 $(GO) build ./...) || exit 1; done
	cd services/node-gateway && CGO_ENABLED=0 $(GO) build -o $(BIN)/node-gateway ./cmd/node-gateway

test:
	@for m in $(MODULES); do echo "== test $$m"; (cd $$m && $(GO) test -race -count=1 -timeout 20m ./...) || exit 1; done

lint:
	@out=$$(gofmt -l $(MODULES)); if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi
	@for m in $(MODULES); do (cd $$m && $(GO) vet ./...) || exit 1; done

run:
	cd services/node-gateway && $(GO) run ./cmd/node-gateway
