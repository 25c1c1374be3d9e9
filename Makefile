.PHONY: test e2e fuzz

test:
	go test -race ./...

e2e:
	e2e/run.sh

# Each fuzz target for a minute.
fuzz:
	go test -run=^$$ -fuzz=FuzzParse$$ -fuzztime=60s ./internal/route/
	go test -run=^$$ -fuzz=FuzzParseRange -fuzztime=60s ./internal/httpx/
	go test -run=^$$ -fuzz=FuzzParseChallenge -fuzztime=60s ./internal/upstream/
