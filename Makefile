# protogate: `make run` tries the gateway, `make test` is what CI runs.
GO      ?= go
FUZZTIME ?= 20s

# Every recipe fails when any command of a pipeline fails, so a filter can
# never turn a failing check into a passing one.
SHELL       := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c

# The ports `make run` serves on: dubbo and triple of the example provider,
# the bridges, ADS and the admin server.
RUN_PORTS ?= 20880 20881 8080 18000 19000

.PHONY: build run test fmt-check vet zookeeper unit envoy-validate fuzz bench check-run-ports

build:
	$(GO) build -o bin/protogate ./cmd/protogate

# The whole gateway on a first run: the example Dubbo provider in the
# background, then protogate run with an embedded NATS server. Ctrl-C stops
# both. Nothing starts, and no log is touched, while one of its ports is
# taken (by an earlier make run, say).
run: check-run-ports build
	$(GO) build -o bin/dubbo-provider ./examples/dubbo-provider
	@log=bin/dubbo-provider-$$(date +%Y%m%d-%H%M%S).log; \
	echo "example provider log: $$log"; \
	bin/dubbo-provider > "$$log" 2>&1 & pid=$$!; \
	trap 'kill $$pid 2>/dev/null || true' EXIT INT TERM; \
	bin/protogate run -c examples/quickstart.yaml

check-run-ports:
	@for p in $(RUN_PORTS); do \
	  if (exec 3<>/dev/tcp/127.0.0.1/$$p) 2>/dev/null; then \
	    echo "port 127.0.0.1:$$p is already in use (another make run?): stop it first" >&2; exit 1; \
	  fi; \
	done

test: fmt-check vet zookeeper unit envoy-validate fuzz

fmt-check:
	@out=$$(gofmt -l $$(find . -name '*.go' -not -path './.git/*')); \
	if [ -n "$$out" ]; then echo "gofmt would change: $$out"; exit 1; fi

vet:
	$(GO) vet ./...

# ZooKeeper, from Debian's package, for the Dubbo discovery tests (they start
# it themselves on a free loopback port). Installs only when missing.
zookeeper:
	@test -x /usr/share/zookeeper/bin/zkServer.sh || { \
	  echo "installing ZooKeeper (Debian package zookeeper)"; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq zookeeper >/dev/null; }

# Everything runs under the race detector except two packages whose
# libraries race on their own: the Node.js provider's tests, whose client is
# dubbo-go's getty transport (dubbo-getty's session.go), and the ZooKeeper
# watcher's, which restart ZooKeeper: go-zookeeper reads the last zxid while
# resending its watches on a reconnect as its receive loop writes it
# (conn.go sendSetWatches and recvLoop; its upstream has the same). The
# Node.js provider's tests install its npm packages themselves (npm ci).
unit:
	$(GO) test -race -count=1 $$($(GO) list ./... | grep -v -e '/test/nodeprovider$$' -e '/protocols/dubbo/registry$$')
	$(GO) test -count=1 ./test/nodeprovider ./protocols/dubbo/registry

# Envoy's own check of every golden translation. Machines without an envoy
# binary print a SKIP line saying so; that is not counted as a pass. The
# exit status is go test's own.
envoy-validate:
	$(GO) test -count=1 -run 'TestEnvoyValidate' -v ./translator

# A bounded fuzz run of the mapping loader, seeded from the examples and the
# broken files; a panic or a malformed problem list fails the suite.
fuzz:
	$(GO) test -run='^$$' -fuzz=FuzzLoad -fuzztime=$(FUZZTIME) -fuzzminimizetime=5s ./config

# Every performance ratio in one run (not part of the test command): the
# Dubbo bridge against direct dubbo-go and wire clients (dubbo and triple),
# the NATS bridge against direct nats.go publishers and a no-op HTTP handler,
# the control plane with 100 to 1,000 ADS clients of a 10,000-route group,
# and the loader against the translator. Each process under test runs alone
# on CPU 0; CPU per request is read for every process. It prints figures,
# never a verdict. Options: make bench BENCHFLAGS='-only nats -duration 5s'
bench:
	$(GO) run ./test/bench $(BENCHFLAGS)
