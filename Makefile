# The Makefile is the one way in: CI runs these same targets.
GO ?= go
BUF := $(GO) tool buf

.PHONY: all build test test-short generate checkgenerate lint fmt-check breaking vet staticcheck ci run

all: build

build:
	$(GO) build ./...

run:
	$(GO) run ./cmd/gateway

## test: the full test suite, race detector on (the README's test command).
test:
	$(GO) test -race -count=1 ./...

test-short:
	$(GO) test -race -short ./...

## generate: regenerate gen/ from proto/ with the pinned local plugins.
generate:
	rm -rf gen
	$(BUF) generate

## checkgenerate: fail when gen/ differs from what `buf generate` produces.
checkgenerate: generate
	@git diff --exit-code --stat -- gen || { echo "gen/ is stale or was edited by hand: run 'make generate'"; exit 1; }
	@test -z "$$(git status --porcelain -- gen)" || { git status --porcelain -- gen; echo "gen/ has untracked or deleted files: run 'make generate' and commit"; exit 1; }

lint:
	$(BUF) lint

fmt-check:
	$(BUF) format --diff --exit-code
	@test -z "$$(gofmt -l $$(git ls-files '*.go' | grep -v '^gen/'))" || { gofmt -l $$(git ls-files '*.go' | grep -v '^gen/'); echo "gofmt needed"; exit 1; }

## breaking: the API must not break against main (see .ci/breaking-base).
breaking:
	@base=$$(.ci/breaking-base); if [ -n "$$base" ]; then echo "buf breaking against $$base"; $(BUF) breaking --against ".git#ref=$$base,subdir=proto"; else echo "buf breaking: no earlier main to compare with; skipped"; fi

vet:
	$(GO) vet ./...

staticcheck:
	$(GO) tool staticcheck ./...

ci: test checkgenerate lint fmt-check breaking vet staticcheck

.PHONY: bench bench-quick

## bench: the full benchmark (every arm and scenario; see README "Performance").
bench:
	bench/run.sh

## bench-quick: the quick benchmark (under 2 minutes): small_get_c32 and
## download_100m_c4 for every available arm.
bench-quick:
	bench/run.sh -quick
