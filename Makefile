SHELL := bash
.SHELLFLAGS := -eu -o pipefail -c

# Fuzz targets as PACKAGE:FuzzName, e.g. ./schemas:FuzzValidate; none yet.
FUZZ_TARGETS ?= ./schemas:FuzzDecodeSubscription ./schemas:FuzzDecodeTopic ./schemas:FuzzParseCloudEvent ./schemas:FuzzParseCloudEventBatch ./schemas:FuzzParseEventGridEvents ./dispatch:FuzzFilterMatch
FUZZTIME ?= 30s

.PHONY: test test-short bench fuzz build minio

# test is what CI runs: formatting, vet, then every test with the race
# detector against a throwaway MinIO (built into .bin/ the first time).
test:
	@unformatted=$$(gofmt -l .); \
	if [[ -n $$unformatted ]]; then echo "gofmt needed on:"; echo "$$unformatted"; exit 1; fi
	go vet ./...
	scripts/minio.sh run -- go test -race -count=1 -timeout 25m ./...

# test-short skips the MinIO backend (its tests skip without the harness).
test-short:
	go test -race ./...

bench:
	scripts/minio.sh run -- go test -run '^$$' -bench . -benchmem -count 5 ./objectlog/ | tee bench.out

fuzz:
	@if [[ -z "$(strip $(FUZZ_TARGETS))" ]]; then echo "fuzz: no FUZZ_TARGETS yet"; fi
	@for target in $(FUZZ_TARGETS); do \
		pkg=$${target%%:*}; name=$${target#*:}; \
		echo "fuzz: $$name in $$pkg for $(FUZZTIME)"; \
		go test -run '^$$' -fuzz "^$$name\$$" -fuzztime $(FUZZTIME) "$$pkg"; \
	done

build:
	go build -o .bin/sluice ./cmd/sluice

minio:
	scripts/minio.sh ensure
