# protogate: `make run` tries the gateway, `make test` is what CI runs.
GO      ?= go
FUZZTIME ?= 20s

.PHONY: build run test fmt-check vet unit fuzz

build:
	$(GO) build -o bin/protogate ./cmd/protogate

# Until `protogate run` lands, "running the gateway" means loading and
# checking the example mappings exactly as the gateway will.
run: build
	bin/protogate validate -c examples/mappings/mixed.yaml
	bin/protogate validate -c examples/mappings/split

test: fmt-check vet unit fuzz

fmt-check:
	@out=$$(gofmt -l $$(find . -name '*.go' -not -path './.git/*')); \
	if [ -n "$$out" ]; then echo "gofmt would change: $$out"; exit 1; fi

vet:
	$(GO) vet ./...

unit:
	$(GO) test -count=1 ./...

# A bounded fuzz run of the mapping loader, seeded from the examples and the
# broken files; a panic or a malformed problem list fails the suite.
fuzz:
	$(GO) test -run='^$$' -fuzz=FuzzLoad -fuzztime=$(FUZZTIME) -fuzzminimizetime=5s ./config
