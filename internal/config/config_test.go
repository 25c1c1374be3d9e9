package config

import (
	"bytes"
	"encoding/json"
	"fmt"
	"log/slog"
	"strings"
	"testing"
)

func TestSecretNeverPrints(t *testing.T) {
	const secret = "hunter2-s3cret"
	cfg := Defaults()
	cfg.Upstreams[0].Username = "alice"
	cfg.Upstreams[0].Password = Secret(secret)
	cfg.Admin.Token = Secret(secret)
	up := cfg.Upstreams[0]

	var logs bytes.Buffer
	logger := slog.New(slog.NewJSONHandler(&logs, nil))
	logger.Info("loaded", "upstream", up, "password", up.Password, "config", cfg)
	logger.Info("loaded", slog.Any("upstream", &up))
	js, err := json.Marshal(cfg)
	if err != nil {
		t.Fatal(err)
	}

	for name, out := range map[string]string{
		"fmt config":   fmt.Sprintf("%v %+v %#v", cfg, cfg, cfg),
		"fmt upstream": fmt.Sprintf("%v %+v %#v", up, up, up),
		"fmt secret":   fmt.Sprintf("%v %+v %#v %s %q %x", up.Password, up.Password, up.Password, up.Password, up.Password, up.Password),
		"slog JSON":    logs.String(),
		"json":         string(js),
	} {
		if strings.Contains(out, secret) {
			t.Errorf("%s shows the secret: %s", name, out)
		}
		if !strings.Contains(out, "REDACTED") {
			t.Errorf("%s does not say REDACTED: %s", name, out)
		}
	}
	if got := up.Password.Reveal(); got != secret {
		t.Errorf("Reveal() = %q, want %q", got, secret)
	}
}
