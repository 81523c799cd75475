.DEFAULT_GOAL := help
GO ?= go
VERSION ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo devel)
LDFLAGS := -X github.com/heraldhq/herald/internal/buildinfo.version=$(VERSION)

help: ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-12s %s\n", $$1, $$2}'

build: ## build bin/herald, stamped with VERSION (git describe)
	$(GO) build -ldflags "$(LDFLAGS)" -o bin/herald ./cmd/herald

install: ## install herald into $(go env GOPATH)/bin, stamped with VERSION
	$(GO) install -ldflags "$(LDFLAGS)" ./cmd/herald

dev: ## run herald dev (embedded JetStream, sandbox, one worker)
	$(GO) run ./cmd/herald dev

test: ## run every test with the race detector (needs redis-server on PATH)
	$(GO) test -race -count=1 -timeout 20m ./...

lint: ## gofmt, go vet and staticcheck
	@test -z "$$(gofmt -l .)" || (gofmt -l .; exit 1)
	$(GO) vet ./...
	$(GO) run honnef.co/go/tools/cmd/staticcheck@v0.8.2 ./...

tidy-lint: ## fail if go.mod or go.sum is not tidy
	$(GO) mod tidy
	git diff --exit-code go.mod go.sum

fuzz: ## run each fuzz target for FUZZTIME (default 30s)
	@for pkg in $$($(GO) list ./...); do \
	  for f in $$($(GO) test -list 'Fuzz.*' $$pkg | grep ^Fuzz); do \
	    $(GO) test -run '^$$' -fuzz "^$$f$$" -fuzztime $${FUZZTIME:-30s} $$pkg || exit 1; \
	  done; \
	done

.PHONY: help build install dev test lint tidy-lint fuzz
