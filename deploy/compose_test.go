package deploy_test

import (
	"bytes"
	"maps"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/entrepot/entrepot/internal/config"
	yaml "go.yaml.in/yaml/v3"
)

// topology is what the compose example says, as the test needs it to
// check it and to run it on loopback.
type topology struct {
	file     composeFile
	replicas []string // the Entrepot services, sorted
	// dotenv are the variables of .env.example, which the file's ${...}
	// take their values from.
	dotenv map[string]string
	// configFile is the replicas' entrepot.yaml, on this side of the mount.
	configFile string
	cfg        *config.Config // as the first replica loads it
	// nginxConf is nginx.conf's text; upstreams are the addresses its
	// upstream block balances over, listen the port it listens on.
	nginxConf string
	upstreams []string
	listen    string
	// minioUser and minioPassword are the .env variables of MinIO's root
	// user, which are the replicas' S3 keys.
	minioUser, minioPassword string
	// bucket is the one minio-init creates.
	bucket string
}

// readTopology parses docker-compose.yml and the files it mounts, and
// checks the topology's shape: three replicas of the image, sharing one
// configuration file and its bucket, each advertising its own address;
// Redis and MinIO where the configuration looks for them; the bucket made
// by minio-init; nginx balancing over the three.
func readTopology(t *testing.T, d dockerfile) *topology {
	raw, err := os.ReadFile(filepath.Join(composeDir, "docker-compose.yml"))
	if err != nil {
		t.Fatal(err)
	}
	top := &topology{dotenv: readDotenv(t, filepath.Join(composeDir, ".env.example"))}
	dec := yaml.NewDecoder(bytes.NewReader(raw))
	dec.KnownFields(true)
	if err := dec.Decode(&top.file); err != nil {
		t.Fatalf("docker-compose.yml: %v", err)
	}
	for _, v := range composeVars.FindAllStringSubmatch(string(raw), -1) {
		if _, ok := top.dotenv[v[1]]; !ok && v[1] != "" && !strings.HasPrefix(v[2], "-") && !strings.HasPrefix(v[2], ":-") {
			t.Errorf("docker-compose.yml needs ${%s}, which .env.example does not set", v[1])
		}
	}
	services := top.file.Services
	for name, s := range services {
		if s.Build != nil {
			df := filepath.Join(composeDir, s.Build.Context, s.Build.Dockerfile)
			if !sameFile(t, df, "Dockerfile") {
				t.Errorf("%s builds %s, not deploy/Dockerfile", name, df)
				continue
			}
			top.replicas = append(top.replicas, name)
		}
		if s.Build == nil && !pinned(s.Image) {
			t.Errorf("%s: image %q is not pinned to a version", name, s.Image)
		}
	}
	slices.Sort(top.replicas)
	if len(top.replicas) != 3 {
		t.Fatalf("%d Entrepot services (%q), want 3", len(top.replicas), top.replicas)
	}
	others := []string{"minio", "minio-init", "nginx", "redis"}
	if got := slices.Sorted(maps.Keys(services)); !slices.Equal(got, slices.Sorted(slices.Values(append(others, top.replicas...)))) {
		t.Fatalf("services %q, want the replicas and %q", got, others)
	}

	top.checkReplicas(t, d)
	top.checkMinio(t)
	top.checkNginx(t)
	redis := parseURL(t, "cluster.redis", top.cfg.Cluster.Redis.Reveal())
	if redis.Hostname() != "redis" || redis.Port() != "6379" {
		t.Errorf("cluster.redis is %s; the redis service listens on redis:6379", redis.Host)
	}
	return top
}

// checkReplicas checks the Entrepot services and loads their
// configuration.
func (top *topology) checkReplicas(t *testing.T, d dockerfile) {
	first := top.file.Services[top.replicas[0]]
	var dataVolumes []string
	for _, name := range top.replicas {
		s := top.file.Services[name]
		mounts := map[string]string{} // target -> source
		for _, v := range s.Volumes {
			src, dst, mode := splitVolume(v)
			mounts[dst] = src
			if dst == d.configPath() && mode != "ro" {
				t.Errorf("%s mounts %s writable", name, dst)
			}
		}
		src, ok := mounts[d.configPath()]
		if !ok {
			t.Fatalf("%s mounts nothing at %s, the file the image serves", name, d.configPath())
		}
		if top.configFile == "" {
			top.configFile = filepath.Join(composeDir, src)
		} else if !sameFile(t, filepath.Join(composeDir, src), top.configFile) {
			t.Errorf("%s mounts %s; the other replicas %s: they must share one configuration", name, src, top.configFile)
		}
		if !maps.Equal(s.Environment, first.Environment) {
			t.Errorf("%s's environment differs from %s's", name, top.replicas[0])
		}
		for _, dep := range []struct{ service, condition string }{
			{"redis", "service_healthy"}, {"minio-init", "service_completed_successfully"},
		} {
			if got := s.DependsOn[dep.service].Condition; got != dep.condition {
				t.Errorf("%s: depends_on %s: %q, want %q", name, dep.service, got, dep.condition)
			}
		}

		env := top.containerEnv(t, s)
		cfg := parseServe(t, d, top.configFile, s.Command, env)
		if top.cfg == nil {
			top.cfg = cfg
		}
		listen := strconv.Itoa(port(t, "listen", cfg.Listen))
		if want := net.JoinHostPort(name, listen); cfg.Cluster.Advertise != want {
			t.Errorf("%s advertises %q, want its own name and port, %s", name, cfg.Cluster.Advertise, want)
		}
		data, ok := mounts[cfg.Data]
		if !ok || !slices.Contains(slices.Collect(maps.Keys(top.file.Volumes)), data) {
			t.Errorf("%s: the data directory %s is not a named volume (read_only: %v)", name, cfg.Data, s.ReadOnly)
		}
		if slices.Contains(dataVolumes, data) {
			t.Errorf("%s shares the data volume %s: one process per data directory", name, data)
		}
		dataVolumes = append(dataVolumes, data)
		if !s.ReadOnly {
			t.Errorf("%s: root filesystem writable (read_only)", name)
		}
		top.checkHealthcheck(t, d, name, s, listen)
		if grace, err := time.ParseDuration(s.StopGracePeriod); err != nil || grace <= cfg.ShutdownGrace {
			t.Errorf("%s: stop_grace_period %q, want more than shutdown_grace (%v)", name, s.StopGracePeriod, cfg.ShutdownGrace)
		}
	}
	s3 := top.cfg.Storage.S3
	if s3 == nil || top.cfg.Cluster.Redis == "" {
		t.Fatalf("%s: the replicas need storage.s3 and cluster.redis", top.configFile)
	}
	if ep := parseURL(t, "storage.s3.endpoint", s3.Endpoint); ep.Hostname() != "minio" || ep.Port() != "9000" {
		t.Errorf("storage.s3.endpoint is %s; the minio service listens on minio:9000", s3.Endpoint)
	}
}

// checkHealthcheck checks that a replica's healthcheck GETs its /readyz
// with a program the image has.
func (top *topology) checkHealthcheck(t *testing.T, d dockerfile, name string, s composeService, listen string) {
	hc := s.Healthcheck
	if hc == nil || len(hc.Test) < 2 || hc.Test[0] != "CMD" {
		t.Errorf("%s: no healthcheck in exec form", name)
		return
	}
	bin := hc.Test[1]
	if !filepath.IsAbs(bin) {
		bin = filepath.Join("/usr/local/bin", bin) // on distroless's PATH
	}
	if !d.files[bin] {
		t.Errorf("%s: the healthcheck runs %s, which the image does not have", name, bin)
	}
	if want := "http://127.0.0.1:" + listen + "/readyz"; !slices.Contains(hc.Test, want) {
		t.Errorf("%s: healthcheck %q does not GET %s", name, hc.Test, want)
	}
}

// checkMinio checks that MinIO's root user is the replicas' S3 keys and
// that minio-init creates their bucket.
func (top *topology) checkMinio(t *testing.T) {
	minio, replica := top.file.Services["minio"], top.file.Services[top.replicas[0]]
	s3 := top.cfg.Storage.S3
	raw := top.rawConfig(t)
	top.minioUser = composeVar(t, minio.Environment["MINIO_ROOT_USER"])
	top.minioPassword = composeVar(t, minio.Environment["MINIO_ROOT_PASSWORD"])
	for _, k := range []struct{ key, minioVar string }{
		{"access_key_env", top.minioUser}, {"secret_key_env", top.minioPassword},
	} {
		env := lookup(t, raw, "storage", "s3", k.key)
		if got := composeVar(t, replica.Environment[env]); got != k.minioVar {
			t.Errorf("the replicas' %s (storage.s3.%s) is ${%s}; MinIO's root user is ${%s}", env, k.key, got, k.minioVar)
		}
	}

	init := top.file.Services["minio-init"]
	if len(init.Command) == 0 {
		t.Fatalf("minio-init has no command")
	}
	alias, bucket, _ := strings.Cut(init.Command[len(init.Command)-1], "/")
	if !slices.Contains(init.Command, "mb") || bucket != s3.Bucket {
		t.Errorf("minio-init runs %q; the replicas' bucket is %s", init.Command, s3.Bucket)
	}
	top.bucket = bucket
	host := parseURL(t, "MC_HOST_"+alias, interpolate(t, init.Environment["MC_HOST_"+alias], top.dotenv))
	if want := parseURL(t, "storage.s3.endpoint", s3.Endpoint); host.Host != want.Host {
		t.Errorf("minio-init creates the bucket at %s; the replicas use %s", host.Host, want.Host)
	}
	if pw, _ := host.User.Password(); host.User.Username() != top.dotenv[top.minioUser] || pw != top.dotenv[top.minioPassword] {
		t.Errorf("minio-init does not log in as MinIO's root user")
	}
	if got := init.DependsOn["minio"].Condition; got != "service_healthy" {
		t.Errorf("minio-init: depends_on minio: %q, want service_healthy", got)
	}
}

// nginxDirective matches a directive's first argument: server in the
// upstream block (not the server block), listen.
var (
	nginxServer = regexp.MustCompile(`(?m)^(\s*server\s+)([^\s;{]+)`)
	nginxListen = regexp.MustCompile(`(?m)^(\s*listen\s+)([^\s;]+)`)
)

// checkNginx checks that nginx balances over the three replicas and
// listens where docker-compose.yml publishes it.
func (top *topology) checkNginx(t *testing.T) {
	s := top.file.Services["nginx"]
	var conf string
	for _, v := range s.Volumes {
		if src, dst, _ := splitVolume(v); dst == "/etc/nginx/nginx.conf" {
			conf = filepath.Join(composeDir, src)
		}
	}
	if conf == "" {
		t.Fatalf("nginx: no configuration mounted at /etc/nginx/nginx.conf")
	}
	b, err := os.ReadFile(conf)
	if err != nil {
		t.Fatal(err)
	}
	top.nginxConf = string(b)
	for _, m := range nginxServer.FindAllStringSubmatch(top.nginxConf, -1) {
		top.upstreams = append(top.upstreams, m[2])
	}
	listen := strconv.Itoa(port(t, "listen", top.cfg.Listen))
	var want []string
	for _, r := range top.replicas {
		want = append(want, net.JoinHostPort(r, listen))
		if got := s.DependsOn[r].Condition; got != "service_healthy" {
			t.Errorf("nginx: depends_on %s: %q, want service_healthy", r, got)
		}
	}
	if !slices.Equal(slices.Sorted(slices.Values(top.upstreams)), want) {
		t.Errorf("nginx balances over %q, want %q", top.upstreams, want)
	}
	listens := nginxListen.FindAllStringSubmatch(top.nginxConf, -1)
	if len(listens) != 1 {
		t.Fatalf("nginx.conf: %d listen directives, want 1", len(listens))
	}
	top.listen = listens[0][2]
	published := false
	for _, p := range s.Ports {
		published = published || strings.HasSuffix(interpolate(t, p, top.dotenv), ":"+top.listen)
	}
	if !published {
		t.Errorf("nginx listens on %s, which its ports %q do not publish", top.listen, s.Ports)
	}
}

// rawConfig is the replicas' entrepot.yaml as plain YAML.
func (top *topology) rawConfig(t *testing.T) map[string]any {
	b, err := os.ReadFile(top.configFile)
	if err != nil {
		t.Fatal(err)
	}
	var raw map[string]any
	if err := yaml.Unmarshal(b, &raw); err != nil {
		t.Fatal(err)
	}
	return raw
}

// containerEnv is the environment compose gives service s, its ${...}
// taken from .env.example.
func (top *topology) containerEnv(t *testing.T, s composeService) map[string]string {
	env := map[string]string{}
	for k, v := range s.Environment {
		env[k] = interpolate(t, v, top.dotenv)
	}
	return env
}
