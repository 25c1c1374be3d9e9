.PHONY: test e2e fuzz bench microbench

test:
	go test -race ./...

e2e:
	e2e/run.sh

# Each fuzz target for a minute.
fuzz:
	go test -run=^$$ -fuzz=FuzzParse$$ -fuzztime=60s ./internal/route/
	go test -run=^$$ -fuzz=FuzzParseDerived -fuzztime=60s ./internal/route/
	go test -run=^$$ -fuzz=FuzzDecode -fuzztime=60s ./internal/derive/
	go test -run=^$$ -fuzz=FuzzGrammar -fuzztime=60s ./internal/oci/
	go test -run=^$$ -fuzz=FuzzReference -fuzztime=60s ./internal/oci/
	go test -run=^$$ -fuzz=FuzzParseRange -fuzztime=60s ./internal/httpx/
	go test -run=^$$ -fuzz=FuzzParseChallenge -fuzztime=60s ./internal/upstream/
	go test -run=^$$ -fuzz=FuzzMatchPattern -fuzztime=60s ./internal/oci/
	go test -run=^$$ -fuzz=FuzzParseImage -fuzztime=60s ./internal/admin/
	go test -run=^$$ -fuzz=FuzzParseSize -fuzztime=60s ./internal/config/
	go test -run=^$$ -fuzz=FuzzImage -fuzztime=60s ./internal/rewrite/
	go test -run=^$$ -fuzz=FuzzDockerfile -fuzztime=60s ./internal/rewrite/
	go test -run=^$$ -fuzz=FuzzManifests -fuzztime=60s ./internal/rewrite/

# The side-by-side benchmark suite (long; see bench/README.md).
bench:
	bench/run.sh

microbench:
	go test -run '^$$' -bench . -benchmem ./...
