package config

import (
	"net/netip"
	"strings"
	"testing"
	"time"
)

func TestParseScaleOut(t *testing.T) {
	const file = `
storage:
  s3:
    endpoint: http://127.0.0.1:9000
    region: us-east-1
    bucket: cache
    prefix: team
    path_style: true
    access_key_env: KEY
    secret_key_env: SECRET
cluster:
  redis: redis://:pw@127.0.0.1:6379/0
  advertise: 127.0.0.1:5000
  secret_env: PEER
redirect:
  enabled: true
  expiry: 2m
  clients: [10.0.0.0/8, 192.168.1.7]
  direct: [10.20.0.0/16]
`
	env := map[string]string{"KEY": "access", "SECRET": "secretkey", "PEER": "0123456789abcdef0123"}
	cfg, _, err := setup{file: file, env: env}.parse(t)
	if err != nil {
		t.Fatal(err)
	}
	s3 := cfg.Storage.S3
	if s3 == nil || s3.Endpoint != "http://127.0.0.1:9000" || s3.Bucket != "cache" || s3.Prefix != "team/" || !s3.PathStyle ||
		s3.AccessKey.Reveal() != "access" || s3.SecretKey.Reveal() != "secretkey" || s3.Region != "us-east-1" {
		t.Fatalf("storage.s3 = %+v", s3)
	}
	if !cfg.Cluster.Enabled() || cfg.Cluster.Advertise != "127.0.0.1:5000" || cfg.Cluster.Secret.Reveal() != env["PEER"] ||
		cfg.Cluster.Redis.Reveal() != "redis://:pw@127.0.0.1:6379/0" {
		t.Fatalf("cluster = %+v", cfg.Cluster)
	}
	if s := cfg.Cluster.Redis.String(); strings.Contains(s, "pw") {
		t.Fatalf("the Redis URL prints its password: %s", s)
	}
	r := cfg.Redirect
	if !r.Enabled || r.Expiry != 2*time.Minute || len(r.Clients) != 2 || r.Clients[1] != netip.MustParsePrefix("192.168.1.7/32") {
		t.Fatalf("redirect = %+v", r)
	}
	for addr, want := range map[string]bool{
		"10.1.2.3": true, "10.20.0.5": false, "192.168.1.7": true, "192.168.1.8": false, "::ffff:10.1.2.3": true,
	} {
		if got := r.Redirects(netip.MustParseAddr(addr)); got != want {
			t.Errorf("Redirects(%s) = %v, want %v", addr, got, want)
		}
	}
	if all := (Redirect{Enabled: true}); !all.Redirects(netip.MustParseAddr("8.8.8.8")) {
		t.Error("no redirect.clients should redirect every client")
	}
	env["REDIS_URL"] = "redis://:pw@10.0.0.1:6379/1"
	withEnv := strings.Replace(file, "redis: redis://:pw@127.0.0.1:6379/0", "redis_env: REDIS_URL", 1)
	if cfg, _, err := (setup{file: withEnv, env: env}).parse(t); err != nil || cfg.Cluster.Redis.Reveal() != env["REDIS_URL"] {
		t.Fatalf("cluster.redis_env: %+v %v", cfg, err)
	}
	if d := Defaults(); d.Storage.S3 != nil || d.Cluster.Enabled() || d.Redirect.Enabled || d.Redirect.Expiry != 10*time.Minute {
		t.Fatalf("defaults: %+v %+v %+v", d.Storage.S3, d.Cluster, d.Redirect)
	}
}

func TestParseScaleOutErrors(t *testing.T) {
	const s3 = "storage:\n  s3:\n    bucket: b\n"
	env := map[string]string{"PEER": "0123456789abcdef", "SHORT": "abc"}
	for _, tc := range []struct{ file, want string }{
		{"storage:\n  s3:\n    region: x\n", "storage.s3.bucket: required"},
		{"storage:\n  s3:\n    bucket: b\n    endpoint: ftp://x\n", "storage.s3.endpoint"},
		{"storage:\n  s3:\n    bucket: b\n    endpoint: http://x/path\n", "storage.s3.endpoint"},
		{"storage:\n  s3:\n    bucket: b\n    access_key_env: K\n", "access_key_env and secret_key_env together"},
		{"storage:\n  s3:\n    bucket: b\n    access_key_env: K\n    secret_key_env: S\n", "storage.s3.access_key_env: K is not set"},
		{"storage:\n  s3:\n    bucket: b\n    bogus: 1\n", "bogus"},
		{"cluster:\n  redis: redis://r:6379\n  advertise: a:1\n  secret_env: PEER\n", "set storage.s3"},
		{s3 + "cluster:\n  redis: http://r:6379\n", "cluster.redis: not a redis://"},
		{s3 + "cluster:\n  redis: redis://r:6379\n  secret_env: PEER\n", "cluster.advertise (or --cluster-advertise): required"},
		{s3 + "cluster:\n  redis: redis://r:6379\n  advertise: nope\n  secret_env: PEER\n", "cluster.advertise: \"nope\""},
		{s3 + "cluster:\n  redis: redis://r:6379\n  advertise: ftp://x\n  secret_env: PEER\n", "cluster.advertise"},
		{s3 + "cluster:\n  redis: redis://r:6379\n  advertise: a:1\n", "cluster.secret_env: required"},
		{s3 + "cluster:\n  redis: redis://r:6379\n  advertise: a:1\n  secret_env: SHORT\n", "at least 16"},
		{s3 + "cluster:\n  redis: redis://r:6379\n  advertise: a:1\n  secret_env: NONE\n", "NONE is not set"},
		{"cluster:\n  advertise: a:1\n", "need cluster.redis"},
		{s3 + "cluster:\n  redis: redis://r\n  redis_env: R\n", "not both"},
		{s3 + "cluster:\n  redis_env: UNSET\n", "cluster.redis_env: UNSET is not set"},
		{"redirect:\n  enabled: true\n", "set storage.s3"},
		{s3 + "redirect:\n  enabled: true\n  expiry: 8d\n", "redirect.expiry"},
		{s3 + "redirect:\n  expiry: soon\n", "redirect.expiry"},
		{s3 + "redirect:\n  clients: [10.0.0.0/33]\n", "redirect.clients[0]"},
		{s3 + "redirect:\n  direct: [nope]\n", "redirect.direct[0]"},
	} {
		_, _, err := setup{file: tc.file, env: env}.parse(t)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%q: %v; want %q", tc.file, err, tc.want)
		}
	}
}
