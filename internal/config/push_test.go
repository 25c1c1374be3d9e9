package config

import (
	"strings"
	"testing"
)

func TestParsePush(t *testing.T) {
	const ups = "upstreams:\n  - name: registry.example.com\n    url: https://registry.example.com\n    push: true\n  - name: docker.io\n    url: https://registry-1.docker.io\n"
	_, _, err := setup{file: ups}.parse(t)
	if err == nil || !strings.Contains(err.Error(), "upstreams[0].push: pushes need authenticated clients") {
		t.Fatalf("push without auth: %v", err)
	}
	env := map[string]string{"TOKENS": "ci:0123456789abcdef0123456789abcdef"}
	cfg, _, err := setup{file: ups + "auth:\n  tokens_env: TOKENS\n", env: env}.parse(t)
	if err != nil {
		t.Fatal(err)
	}
	if !cfg.Upstreams[0].Push || cfg.Upstreams[1].Push {
		t.Fatalf("push = %v, %v; want true for the first upstream only", cfg.Upstreams[0].Push, cfg.Upstreams[1].Push)
	}
}
