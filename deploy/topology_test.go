package deploy_test

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"log"
	"maps"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/entrepot/entrepot/internal/store/s3/s3test"
	"github.com/entrepot/entrepot/internal/testenv"
	"github.com/google/go-containerregistry/pkg/name"
	ggcr "github.com/google/go-containerregistry/pkg/registry"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/minio/minio-go/v7"
	yaml "go.yaml.in/yaml/v3"
)

// TestComposeTopology checks docker-compose.yml's shape, then runs its
// topology as processes on loopback, as the e2e suite runs its servers
// without containers: a real redis-server, a real S3 server with the
// bucket minio-init creates, three `entrepot serve` built from
// ./cmd/entrepot, and nginx, each with the example's own files, rewritten
// only where a service's host name and port must become a loopback
// address (the flags --listen, --admin-listen and --data place each
// replica). Concurrent pulls through nginx get the exact bytes, and the
// upstream sees one GET per blob.
func TestComposeTopology(t *testing.T) {
	d := readDockerfile(t)
	top := readTopology(t, d)
	if t.Failed() {
		t.FailNow()
	}
	if testing.Short() {
		t.Skip("starts Redis, an S3 server, three replicas and nginx")
	}
	nginxBin := testenv.Binary(t, "nginx", "ENTREPOT_NGINX", "apt-get install nginx")

	// The services the replicas' configuration names, on loopback.
	bucket := s3test.Start(t)
	s3c := s3test.Client(t, bucket)
	if err := s3c.MakeBucket(t.Context(), top.bucket, minio.MakeBucketOptions{Region: bucket.Region}); err != nil {
		t.Fatalf("creating the bucket %s, as minio-init does: %v", top.bucket, err)
	}
	redisAddr, _ := testenv.Redis(t)
	origin := newCountingRegistry(t)
	img, repo := origin.push(t)

	// What each compose host:port is on loopback.
	s3 := parseURL(t, "storage.s3.endpoint", top.cfg.Storage.S3.Endpoint)
	redis := parseURL(t, "cluster.redis", top.cfg.Cluster.Redis.Reveal())
	loopback := map[string]string{
		s3.Host:    strings.TrimPrefix(bucket.Endpoint, "http://"),
		redis.Host: redisAddr,
	}
	listen := fmt.Sprint(port(t, "listen", top.cfg.Listen))
	for _, r := range top.replicas {
		loopback[net.JoinHostPort(r, listen)] = testenv.Addr(testenv.FreePort(t))
	}
	conf := top.loopbackConfig(t, loopback, origin.URL)

	// The .env: .env.example's, with the S3 server's keys as MinIO's root
	// user.
	dotenv := maps.Clone(top.dotenv)
	dotenv[top.minioUser], dotenv[top.minioPassword] = bucket.AccessKey, bucket.SecretKey

	bin := buildEntrepot(t)
	for _, r := range top.replicas {
		s := top.file.Services[r]
		addr := loopback[net.JoinHostPort(r, listen)]
		var env []string
		for k, v := range s.Environment {
			env = append(env, k+"="+interpolate(t, v, dotenv))
		}
		args := slices.Concat(d.entrypoint[1:len(d.entrypoint)-1], []string{conf})
		for _, a := range s.Command {
			args = append(args, mapAddr(a, loopback))
		}
		args = append(args, "--listen", addr, "--admin-listen", testenv.Addr(testenv.FreePort(t)), "--data", t.TempDir())
		testenv.Start(t, bin, args, env, readyz("http://"+addr))
	}
	for _, r := range top.replicas {
		waitFor(t, r+" sees the 3 replicas", func() bool {
			return strings.Contains(getBody("http://"+loopback[net.JoinHostPort(r, listen)]+"/readyz"), "3 replicas")
		})
	}

	lb := startNginx(t, nginxBin, top, loopback)
	testenv.Start(t, nginxBin, lb.args, nil, readyz("http://"+lb.addr))

	// Cold pulls from several clients at once, through the balancer.
	const clients = 12
	ref, err := name.ParseReference(lb.addr+"/docker.io/"+repo+":1", name.Insecure)
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	errs := make(chan error, clients)
	for range clients {
		wg.Go(func() { errs <- pullAndVerify(ref, img) })
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Error(err)
		}
	}
	origin.mu.Lock()
	t.Logf("%d pulls through nginx; the upstream got %v", clients, origin.requests)
	origin.mu.Unlock()
	for path, n := range origin.blobGETs(t, repo, img) {
		if n != 1 {
			t.Errorf("%s: %d GETs at the upstream for %d pulls over %d replicas, want 1", path, n, clients, len(top.replicas))
		}
	}
}

// loopbackConfig writes the replicas' entrepot.yaml with every address of
// another service replaced by its loopback one (loopback, by host:port),
// and every upstream's URL by the test's registry; nothing else changes.
func (top *topology) loopbackConfig(t *testing.T, loopback map[string]string, registry string) string {
	b, err := os.ReadFile(top.configFile)
	if err != nil {
		t.Fatal(err)
	}
	var doc yaml.Node
	if err := yaml.Unmarshal(b, &doc); err != nil {
		t.Fatal(err)
	}
	root := doc.Content[0]
	for _, key := range [][]string{{"storage", "s3", "endpoint"}, {"cluster", "redis"}} {
		n := node(t, root, key...)
		u := parseURL(t, strings.Join(key, "."), n.Value)
		addr, ok := loopback[u.Host]
		if !ok {
			t.Fatalf("%s: %s is none of the services", strings.Join(key, "."), u.Host)
		}
		u.Host = addr
		n.Value = u.String()
	}
	for _, up := range node(t, root, "upstreams").Content {
		node(t, up, "url").Value = registry
	}
	out, err := yaml.Marshal(&doc)
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "entrepot.yaml")
	if err := os.WriteFile(path, out, 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

// node is the value at path in a YAML mapping, failing the test if
// there is none.
func node(t *testing.T, n *yaml.Node, path ...string) *yaml.Node {
	t.Helper()
	for _, k := range path {
		if n.Kind != yaml.MappingNode {
			t.Fatalf("%s: not a mapping", strings.Join(path, "."))
		}
		var next *yaml.Node
		for i := 0; i+1 < len(n.Content); i += 2 {
			if n.Content[i].Value == k {
				next = n.Content[i+1]
			}
		}
		if next == nil {
			t.Fatalf("no %s", strings.Join(path, "."))
		}
		n = next
	}
	return n
}

// mapAddr is arg with a compose host:port replaced by its loopback one.
func mapAddr(arg string, loopback map[string]string) string {
	if addr, ok := loopback[arg]; ok {
		return addr
	}
	return arg
}

// nginx is how the test runs nginx.
type nginx struct {
	addr string
	args []string
}

// startNginx writes nginx.conf with its listen and upstream servers on
// loopback, and the paths a process of the test needs (its prefix, pid,
// temporary files) in a directory of its own; the image sets those
// itself.
func startNginx(t *testing.T, bin string, top *topology, loopback map[string]string) nginx {
	prefix := t.TempDir()
	lb := nginx{addr: testenv.Addr(testenv.FreePort(t))}
	conf := nginxServer.ReplaceAllStringFunc(top.nginxConf, func(m string) string {
		g := nginxServer.FindStringSubmatch(m)
		addr, ok := loopback[g[2]]
		if !ok {
			t.Fatalf("nginx.conf: upstream server %s is none of the replicas", g[2])
		}
		return g[1] + addr
	})
	conf = nginxListen.ReplaceAllString(conf, "${1}"+lb.addr)
	var paths strings.Builder
	for _, p := range []string{"client_body", "proxy", "fastcgi", "uwsgi", "scgi"} {
		fmt.Fprintf(&paths, "\t%s_temp_path %s;\n", p, filepath.Join(prefix, p))
	}
	conf = httpBlock.ReplaceAllString(conf, "${0}\n"+paths.String())
	path := filepath.Join(prefix, "nginx.conf")
	if err := os.WriteFile(path, []byte(conf), 0o644); err != nil {
		t.Fatal(err)
	}
	lb.args = []string{"-p", prefix, "-c", path, "-e", "stderr",
		"-g", fmt.Sprintf("daemon off; pid %s;", filepath.Join(prefix, "nginx.pid"))}
	return lb
}

var httpBlock = regexp.MustCompile(`(?m)^http\s*\{`)

// countingRegistry is the upstream: a real registry that counts the
// requests it gets by method and path.
type countingRegistry struct {
	*httptest.Server
	mu       sync.Mutex     // guards requests
	requests map[string]int // "METHOD /path"
}

func newCountingRegistry(t *testing.T) *countingRegistry {
	reg := ggcr.New(ggcr.Logger(log.New(io.Discard, "", 0)))
	c := &countingRegistry{requests: map[string]int{}}
	c.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c.mu.Lock()
		c.requests[r.Method+" "+r.URL.Path]++
		c.mu.Unlock()
		reg.ServeHTTP(w, r)
	}))
	t.Cleanup(c.Close)
	return c
}

// push writes a random image of three layers and returns it and its
// repository.
func (c *countingRegistry) push(t *testing.T) (v1.Image, string) {
	const repo = "library/app"
	img, err := random.Image(1<<20, 3)
	if err != nil {
		t.Fatal(err)
	}
	ref, err := name.ParseReference(strings.TrimPrefix(c.URL, "http://")+"/"+repo+":1", name.Insecure)
	if err != nil {
		t.Fatal(err)
	}
	if err := remote.Write(ref, img); err != nil {
		t.Fatal(err)
	}
	c.mu.Lock()
	clear(c.requests) // from now on, the replicas' requests only
	c.mu.Unlock()
	return img, repo
}

// blobGETs counts the GETs of each blob of img (config and layers), by
// path.
func (c *countingRegistry) blobGETs(t *testing.T, repo string, img v1.Image) map[string]int {
	m, err := img.Manifest()
	if err != nil {
		t.Fatal(err)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	out := map[string]int{}
	for _, d := range append([]v1.Descriptor{m.Config}, m.Layers...) {
		path := "/v2/" + repo + "/blobs/" + d.Digest.String()
		out[path] = c.requests["GET "+path]
	}
	return out
}

// pullAndVerify pulls ref and checks that its manifest is want's and that
// every blob's bytes hash to its digest.
func pullAndVerify(ref name.Reference, want v1.Image) error {
	img, err := remote.Image(ref)
	if err != nil {
		return fmt.Errorf("pull %s: %w", ref, err)
	}
	got, err := img.Digest()
	if err != nil {
		return err
	}
	if wd, _ := want.Digest(); got != wd {
		return fmt.Errorf("pull %s: manifest %s, want %s", ref, got, wd)
	}
	m, err := img.Manifest()
	if err != nil {
		return err
	}
	config, err := img.RawConfigFile()
	if err != nil {
		return err
	}
	if err := checkDigest(m.Config.Digest, strings.NewReader(string(config))); err != nil {
		return fmt.Errorf("config: %w", err)
	}
	layers, err := img.Layers()
	if err != nil {
		return err
	}
	for _, l := range layers {
		d, err := l.Digest()
		if err != nil {
			return err
		}
		rc, err := l.Compressed()
		if err != nil {
			return fmt.Errorf("layer %s: %w", d, err)
		}
		err = checkDigest(d, rc)
		rc.Close()
		if err != nil {
			return fmt.Errorf("layer %s: %w", d, err)
		}
	}
	return nil
}

// checkDigest reads r to its end and checks that it hashes to want
// (sha256, as the test's images are).
func checkDigest(want v1.Hash, r io.Reader) error {
	h := sha256.New()
	if _, err := io.Copy(h, r); err != nil {
		return err
	}
	if got := hex.EncodeToString(h.Sum(nil)); want.Algorithm != "sha256" || got != want.Hex {
		return fmt.Errorf("bytes hash to sha256:%s", got)
	}
	return nil
}

// buildEntrepot builds ./cmd/entrepot into the test's directory.
func buildEntrepot(t *testing.T) string {
	bin := filepath.Join(t.TempDir(), "entrepot")
	cmd := exec.Command("go", "build", "-o", bin, "github.com/entrepot/entrepot/cmd/entrepot")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build ./cmd/entrepot: %v\n%s", err, out)
	}
	return bin
}

// readyz is a ready function for testenv.Start: base's /readyz says ok.
func readyz(base string) func() error {
	return func() error {
		if body := getBody(base + "/readyz"); !strings.HasPrefix(body, "ok") {
			return fmt.Errorf("GET /readyz: %q", body)
		}
		return nil
	}
}

// getBody GETs u and returns its body, or the error's text, if not 200.
func getBody(u string) string {
	c := http.Client{Timeout: 5 * time.Second}
	resp, err := c.Get(u)
	if err != nil {
		return err.Error()
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		return resp.Status + ": " + string(b)
	}
	return string(b)
}

// waitFor polls cond until it holds, failing the test after 30 s: the
// replicas find each other through Redis within a few seconds.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("after 30 s: %s", what)
		}
		time.Sleep(100 * time.Millisecond)
	}
}
