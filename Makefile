# Each target is a plain go command; `make test` is what CI runs.
STATICCHECK := honnef.co/go/tools/cmd/staticcheck@v0.8.2

.PHONY: test check unit e2e fuzz bench build

test: check
	./scripts/test-deps.sh
	go test -race -count=1 ./...
	go test -count=1 -run 'Allocat' ./...

check:
	@go mod tidy -diff || (echo "go.mod/go.sum are not tidy: run go mod tidy"; exit 1)
	@test -z "$$(gofmt -l .)" || (echo "gofmt would change:"; gofmt -l .; exit 1)
	go vet ./...
	go run $(STATICCHECK) ./...

unit:
	go test -race ./internal/... .

e2e:
	./scripts/test-deps.sh
	go test -race -count=1 ./e2e/

# Run each fuzz target for FUZZTIME (the seed corpora run in `make test`).
FUZZTIME ?= 60s
fuzz:
	go test -run=^$$ -fuzz='^FuzzParser$$' -fuzztime=$(FUZZTIME) ./internal/dialect/stomp/
	go test -run=^$$ -fuzz='^FuzzParse$$' -fuzztime=$(FUZZTIME) ./internal/ingest/
	go test -run=^$$ -fuzz='^FuzzParseFastPath$$' -fuzztime=$(FUZZTIME) ./internal/ingest/
	go test -run=^$$ -fuzz='^FuzzDecodeEvent$$' -fuzztime=$(FUZZTIME) .
	go test -run=^$$ -fuzz='^FuzzDecode$$' -fuzztime=$(FUZZTIME) ./internal/dialect/channels/
	go test -run=^$$ -fuzz='^FuzzScanner$$' -fuzztime=$(FUZZTIME) ./internal/jsonscan/
	go test -run=^$$ -fuzz='^FuzzDecode$$' -fuzztime=$(FUZZTIME) ./internal/dialect/ess/
	go test -run=^$$ -fuzz='^FuzzDecode$$' -fuzztime=$(FUZZTIME) ./internal/dialect/streams/
	go test -run=^$$ -fuzz='^FuzzParsePath$$' -fuzztime=$(FUZZTIME) ./internal/dialect/streams/
	go test -run=^$$ -fuzz='^FuzzPush$$' -fuzztime=$(FUZZTIME) ./internal/dialect/channels/
	go test -run=^$$ -fuzz='^FuzzVerify$$' -fuzztime=$(FUZZTIME) ./internal/auth/
	go test -run=^$$ -fuzz='^FuzzMatch$$' -fuzztime=$(FUZZTIME) ./internal/filter/
	go test -run=^$$ -fuzz='^FuzzSubjectToken$$' -fuzztime=$(FUZZTIME) ./internal/engine/
	go test -run=^$$ -fuzz='^FuzzRenderIngested$$' -fuzztime=$(FUZZTIME) ./internal/dialect/stomp/
	go test -run=^$$ -fuzz='^FuzzRenderStored$$' -fuzztime=$(FUZZTIME) ./internal/dialect/stomp/
	go test -run=^$$ -fuzz='^FuzzRenderIngested$$' -fuzztime=$(FUZZTIME) ./internal/dialect/channels/
	go test -run=^$$ -fuzz='^FuzzRenderStored$$' -fuzztime=$(FUZZTIME) ./internal/dialect/channels/
	go test -run=^$$ -fuzz='^FuzzStream$$' -fuzztime=$(FUZZTIME) ./internal/bench/
	go test -run=^$$ -fuzz='^FuzzScanFrame$$' -fuzztime=$(FUZZTIME) ./internal/bench/
	go test -run=^$$ -fuzz='^FuzzDecode$$' -fuzztime=$(FUZZTIME) ./client/

bench:
	go test -run=^$$ -bench=. -benchmem ./internal/session/ ./internal/engine/

build:
	go build -o herald ./cmd/herald
