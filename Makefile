# PEZ: the two commands a user needs are `make run` and `make test`.

CARGO ?= cargo

.PHONY: run test bench lint fmt clean

## Start PEZ on 127.0.0.1:8000 with its data in ./pez-data.
run:
	$(CARGO) run --release

## Every test: unit, property and integration (real server, real HTTP).
test:
	$(CARGO) nextest --version >/dev/null 2>&1 || $(CARGO) install --locked cargo-nextest
	tests/pg-cluster.sh run $(CARGO) nextest run --workspace --no-fail-fast

.PHONY: fuzz

FUZZ_CASES ?= 50000
FUZZ_SECONDS ?= 180

## The property tests of what clients send (src/http/fuzz.rs: query, path,
## JSON bodies) with FUZZ_CASES cases each instead of make test's 256,
## stopped (and failed) after FUZZ_SECONDS, a bound on a run that hangs, not
## a speed target: 50 to 60 s on two cores (a CI run went past an earlier
## bound of 60 s on a busy machine). A case
## that fails is kept in proptest-regressions/ and tried first from then on.
fuzz:
	$(CARGO) nextest --version >/dev/null 2>&1 || $(CARGO) install --locked cargo-nextest
	$(CARGO) nextest run --lib --no-run
	PROPTEST_CASES=$(FUZZ_CASES) timeout $(FUZZ_SECONDS) $(CARGO) nextest run --lib http::fuzz::

.PHONY: bench-client

## The Rust client's numbers/s in-process (clients/rust), beside a bare
## atomic counter measured in the same run; prints figures.
bench-client:
	$(CARGO) build --release --bin pez
	$(CARGO) build --release -p pez-client --example throughput
	bench/bench-client.sh $(BENCH_CLIENT_ARGS)

## Throughput against the HTTP ceiling, measured in one run, then the
## instructions per request under callgrind beside the same ceiling
## (bench/instructions.py; about two minutes); prints figures.
bench:
	$(CARGO) build --release --bin pez --example ceiling
	python3 bench/bench.py $(BENCH_ARGS)
	python3 bench/instructions.py $(INSTRUCTIONS_ARGS)

.PHONY: chaos

## The fault suite (docs/reliability.md): PostgreSQL clusters (also behind
## PgBouncer) and PEZ instances under a nemesis, every number checked
## (first its self-test: a pez-take that breaks a promise must fail it);
## about five minutes. CHAOS_ARGS="--short" is CI's run, two to three
## minutes; --help lists the rest.
chaos:
	$(CARGO) build --release --bin pez
	$(CARGO) build --release -p pez-client --bin pez-take
	python3 tests/chaos/selftest.py
	python3 tests/chaos/chaos.py $(CHAOS_ARGS)

.PHONY: power-cut

## The embedded store through power cuts of the host (docs/reliability.md):
## its data directory on cutfs (tests/cutfs), a FUSE file system that drops
## what was not synced; at least 120 cuts in about five minutes, every
## number checked. POWER_CUT_ARGS="--short" is CI's run (12 cuts).
power-cut:
	$(CARGO) build --release --bin pez
	$(CARGO) build --release -p cutfs
	python3 tests/power-cut/power_cut.py $(POWER_CUT_ARGS)

.PHONY: rpm package-test system-test

## The RPM for Amazon Linux 2023: target/generate-rpm/pez-<version>-1.x86_64.rpm
## (cargo-generate-rpm, installed when missing; see docs/deploy.md).
rpm:
	$(CARGO) generate-rpm --version >/dev/null 2>&1 || $(CARGO) install --locked cargo-generate-rpm
	$(CARGO) build --release --bin pez
	CARGO="$(CARGO)" packaging/build-rpm.sh

## The RPM, its unit, env file and Chef cookbook, checked (builds the RPM first).
package-test:
	CARGO="$(CARGO)" tests/package-test.sh

## The RPM installed, run, killed, upgraded and removed under a real systemd
## (systemd-nspawn -b of a Debian root cached in target/system-test; as root).
system-test:
	CARGO="$(CARGO)" tests/system-test.sh

.PHONY: api-test

## schemathesis (from PyPI) against /openapi.json of a live server: no 5xx,
## every response as documented.
api-test:
	$(CARGO) build --bin pez
	tests/api-test.sh target/debug/pez

## What CI checks besides the tests.
lint:
	$(CARGO) fmt --all -- --check
	$(CARGO) clippy --workspace --all-targets -- -D warnings

fmt:
	$(CARGO) fmt --all

clean:
	$(CARGO) clean
