package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"fmt"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/entrepot/entrepot/internal/store/s3"
	"github.com/entrepot/entrepot/internal/store/s3/s3test"
	"github.com/entrepot/entrepot/internal/testenv"
	"github.com/google/go-containerregistry/pkg/name"
	ggcr "github.com/google/go-containerregistry/pkg/registry"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/validate"
	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/credentials"
	"github.com/opencontainers/go-digest"
)

// clusterOrigin is a real registry that counts what the replicas ask it,
// and serves one raw blob (slow) whose first half it holds back until
// release: a fill that is under way for as long as a test needs.
type clusterOrigin struct {
	*httptest.Server
	slow    []byte
	release chan struct{}

	mu       sync.Mutex
	requests map[string]int // "METHOD path", and "RANGE path" for ranged GETs
}

func newClusterOrigin(t *testing.T) *clusterOrigin {
	o := &clusterOrigin{slow: make([]byte, 12<<20), release: make(chan struct{}), requests: map[string]int{}}
	rand.Read(o.slow)
	slowPath := "/v2/library/slow/blobs/" + digest.FromBytes(o.slow).String()
	reg := ggcr.New(ggcr.Logger(log.New(io.Discard, "", 0)))
	o.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		o.mu.Lock()
		o.requests[r.Method+" "+r.URL.Path]++
		if r.Header.Get("Range") != "" {
			o.requests["RANGE "+r.URL.Path]++
		}
		o.mu.Unlock()
		if r.URL.Path != slowPath {
			reg.ServeHTTP(w, r)
			return
		}
		if r.Header.Get("Range") == "" && r.Method == http.MethodGet {
			w.Header().Set("Content-Length", fmt.Sprint(len(o.slow)))
			half := len(o.slow) / 2
			w.Write(o.slow[:half])
			w.(http.Flusher).Flush()
			select {
			case <-o.release:
			case <-r.Context().Done():
				return
			}
			w.Write(o.slow[half:])
			return
		}
		http.ServeContent(w, r, "", time.Time{}, bytes.NewReader(o.slow))
	}))
	t.Cleanup(func() {
		select {
		case <-o.release:
		default:
			close(o.release)
		}
		o.Close()
	})
	return o
}

func (o *clusterOrigin) count(key string) int {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.requests[key]
}

// push writes a random image of layers of size bytes as library/<repo>:<tag>.
func (o *clusterOrigin) push(t *testing.T, repo, tag string, size int64, layers int) v1.Image {
	img, err := random.Image(size, int64(layers))
	if err != nil {
		t.Fatal(err)
	}
	ref, _ := name.ParseReference(fmt.Sprintf("%s/library/%s:%s", strings.TrimPrefix(o.URL, "http://"), repo, tag))
	if err := remote.Write(ref, img); err != nil {
		t.Fatal(err)
	}
	return img
}

// blobGETs counts the origin's GETs of each blob of img, by digest.
func (o *clusterOrigin) blobGETs(t *testing.T, repo string, img v1.Image) map[string]int {
	m, err := img.Manifest()
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]int{}
	for _, d := range append([]v1.Descriptor{m.Config}, m.Layers...) {
		out[d.Digest.String()] = o.count("GET /v2/library/" + repo + "/blobs/" + d.Digest.String())
	}
	return out
}

// replica is one entrepot serve of the cluster.
type replica struct {
	addr, admin string
	p           *testenv.Process
}

func (r *replica) pull(upstream, repo, tag string) error {
	ref, err := name.ParseReference(r.addr+"/"+upstream+"/library/"+repo+":"+tag, name.Insecure)
	if err != nil {
		return err
	}
	img, err := remote.Image(ref)
	if err != nil {
		return err
	}
	return validate.Image(img)
}

// metrics returns the replica's /metrics, from its admin listener.
func (r *replica) metrics(t *testing.T) string {
	resp, err := http.Get("http://" + r.admin + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return string(b)
}

func (r *replica) readyz() string {
	resp, err := http.Get("http://" + r.addr + "/readyz")
	if err != nil {
		return err.Error()
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return string(b)
}

// eventually polls cond until it holds, failing the test after 30 s.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("after 30 s: %s", what)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// Three replicas on one bucket and one Redis act as one cache: concurrent
// cold pulls spread over them cause one upstream GET per blob and one tag
// revalidation per TTL; eviction runs on one of them; a replica killed
// mid-fill leaves the fill to another, which resumes it and gives its
// client the exact bytes; without Redis they serve alone, and rejoin when
// it returns.
func TestCluster(t *testing.T) {
	if testing.Short() {
		t.Skip("starts Redis, an S3 server and three replicas")
	}
	bucket := s3test.Start(t)
	redisAddr, redis := testenv.Redis(t)
	bin := build(t)
	o := newClusterOrigin(t)
	first := o.push(t, "app", "1", 4<<20, 3)

	replicas := make([]*replica, 3)
	for i := range replicas {
		replicas[i] = startReplica(t, bin, bucket, func(r *replica) string {
			// One stream per blob (parallel.min_size 0): the test
			// counts each fill's GETs and its resumes across replicas.
			return fmt.Sprintf(`upstreams:
  - name: docker.io
    url: %s
    ttl: 1h
    parallel: {min_size: 0}
  - name: quick
    url: %s
    ttl: 3s
    parallel: {min_size: 0}
storage:
  max_size: 40MiB
cluster:
  redis: redis://%s/0
  secret_env: PEER_SECRET
`, o.URL, o.URL, redisAddr)
		}, "--cluster-advertise")
	}
	eventually(t, "the replicas see each other", func() bool {
		return strings.Contains(replicas[0].readyz(), "3 replicas")
	})
	leaders := 0
	for _, r := range replicas {
		m := r.metrics(t)
		if !strings.Contains(m, "\nentrepot_cluster_up 1\n") {
			t.Errorf("replica %s: entrepot_cluster_up is not 1", r.addr)
		}
		if strings.Contains(m, "\nentrepot_cluster_leader 1\n") {
			leaders++
		}
	}
	if leaders != 1 {
		t.Errorf("%d replicas say they lead, want 1", leaders)
	}

	// 30 concurrent cold pulls over three replicas: one GET per blob.
	pullAll := func(n int, upstream, repo, tag string, on []*replica) {
		t.Helper()
		var wg sync.WaitGroup
		errs := make(chan error, n)
		for i := range n {
			wg.Go(func() { errs <- on[i%len(on)].pull(upstream, repo, tag) })
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			if err != nil {
				t.Fatalf("pull %s/%s:%s: %v", upstream, repo, tag, err)
			}
		}
	}
	tagAsked := func() int {
		return o.count("HEAD /v2/library/app/manifests/1") + o.count("GET /v2/library/app/manifests/1")
	}
	pushed := tagAsked() // the push's own HEAD
	pullAll(30, "docker.io", "app", "1", replicas)
	for d, n := range o.blobGETs(t, "app", first) {
		if n != 1 {
			t.Errorf("blob %s: %d upstream GETs for 30 cold pulls over 3 replicas, want 1", d, n)
		}
	}
	if n := tagAsked() - pushed; n != 1 {
		t.Errorf("tag app:1 asked %d times upstream by 30 pulls over 3 replicas, want once", n)
	}

	// A tag is revalidated once per TTL across the cluster.
	if err := replicas[0].pull("quick", "app", "1"); err != nil {
		t.Fatal(err)
	}
	heads := o.count("HEAD /v2/library/app/manifests/1")
	time.Sleep(3500 * time.Millisecond) // past the quick upstream's TTL
	start := time.Now()
	pullAll(30, "quick", "app", "1", replicas)
	elapsed := time.Since(start)
	got := o.count("HEAD /v2/library/app/manifests/1") - heads
	if want := 1 + int(elapsed/(3*time.Second)); got < 1 || got > want {
		t.Errorf("%d revalidations of app:1 by 30 pulls over 3 replicas in %v, want 1 per 3 s TTL", got, elapsed)
	}

	// Past storage.max_size, one replica evicts for all.
	for i := range 3 {
		tag := fmt.Sprint("big", i)
		o.push(t, "app", tag, 6<<20, 2)
		pullAll(3, "docker.io", "app", tag, replicas)
	}
	s3c, err := minio.New(strings.TrimPrefix(strings.TrimPrefix(bucket.Endpoint, "http://"), "https://"), &minio.Options{
		Creds: credentials.NewStaticV4(bucket.AccessKey, bucket.SecretKey, ""), Region: bucket.Region,
	})
	if err != nil {
		t.Fatal(err)
	}
	stored := func() (n int64) {
		for obj := range s3c.ListObjects(context.Background(), bucket.Bucket, minio.ListObjectsOptions{Prefix: "blobs/", Recursive: true}) {
			n += obj.Size
		}
		return n
	}
	eventually(t, "the bucket back under the high watermark", func() bool { return stored() <= 38<<20 })
	evicting := 0
	for _, r := range replicas {
		if strings.Contains(r.p.Output(), "msg=evicted") {
			evicting++
		}
	}
	if evicting != 1 {
		t.Errorf("%d replicas evicted, want 1 (the leader)", evicting)
	}

	// A replica killed mid-fill: the replica relaying its fill takes it
	// over where it stopped, and its client gets the exact bytes.
	slowURL := "/v2/docker.io/library/slow/blobs/" + digest.FromBytes(o.slow).String()
	owner, relay := replicas[0], replicas[1]
	resp1, err := http.Get("http://" + owner.addr + slowURL)
	if err != nil {
		t.Fatal(err)
	}
	defer resp1.Body.Close()
	if _, err := io.ReadFull(resp1.Body, make([]byte, 1<<20)); err != nil {
		t.Fatal(err)
	}
	resp2, err := http.Get("http://" + relay.addr + slowURL)
	if err != nil {
		t.Fatal(err)
	}
	defer resp2.Body.Close()
	head := make([]byte, 1<<20)
	if _, err := io.ReadFull(resp2.Body, head); err != nil {
		t.Fatal(err)
	}
	owner.p.Kill()
	close(o.release)
	rest, err := io.ReadAll(resp2.Body)
	if err != nil {
		t.Fatalf("the relaying replica's client after the owner died: %v", err)
	}
	if got := digest.FromBytes(append(head, rest...)); got != digest.FromBytes(o.slow) {
		t.Fatalf("the relaying replica's client got %d bytes hashing to %s, want the blob", len(head)+len(rest), got)
	}
	slowBlob := "/v2/library/slow/blobs/" + digest.FromBytes(o.slow).String()
	if n, r := o.count("GET "+slowBlob), o.count("RANGE "+slowBlob); n != 2 || r != 1 {
		t.Errorf("the slow blob: %d upstream GETs (%d ranged), want the first and one ranged resume", n, r)
	}

	// Without Redis, the replicas serve alone; with it back, they rejoin.
	alive := replicas[1:]
	redis.Kill()
	for _, r := range alive {
		eventually(t, "readyz says alone", func() bool { return strings.Contains(r.readyz(), "alone") })
	}
	o.push(t, "app", "alone", 1<<20, 2)
	pullAll(4, "docker.io", "app", "alone", alive)
	testenv.StartRedis(t, redisPort(t, redisAddr))
	for _, r := range alive {
		eventually(t, "readyz says rejoined", func() bool { return strings.Contains(r.readyz(), "2 replicas") })
	}
	again := o.push(t, "app", "rejoined", 2<<20, 3)
	pullAll(10, "docker.io", "app", "rejoined", alive)
	for d, n := range o.blobGETs(t, "app", again) {
		if n != 1 {
			t.Errorf("blob %s after Redis returned: %d upstream GETs, want 1", d, n)
		}
	}
}

// startReplica starts entrepot serve on bucket with the configuration
// conf writes for it (storage.s3 is added to its storage section, or as
// one), on loopback ports of its own; with advertise ("--cluster-advertise")
// it tells the cluster its address.
func startReplica(t *testing.T, bin string, bucket s3.Config, conf func(*replica) string, advertise ...string) *replica {
	r := &replica{addr: freeAddr(t), admin: freeAddr(t)}
	s3conf := fmt.Sprintf(`  s3:
    endpoint: %s
    region: %s
    bucket: %s
    path_style: true
    access_key_env: S3_KEY
    secret_key_env: S3_SECRET
`, bucket.Endpoint, bucket.Region, bucket.Bucket)
	yaml := conf(r)
	if strings.Contains(yaml, "storage:\n") {
		yaml = strings.Replace(yaml, "storage:\n", "storage:\n"+s3conf, 1)
	} else {
		yaml += "storage:\n" + s3conf
	}
	yaml = fmt.Sprintf("listen: %s\ndata: %s\nadmin:\n  listen: %s\n", r.addr, t.TempDir(), r.admin) + yaml
	path := filepath.Join(t.TempDir(), "entrepot.yaml")
	if err := os.WriteFile(path, []byte(yaml), 0o644); err != nil {
		t.Fatal(err)
	}
	args := []string{"serve", "--config", path, "--log-level", "debug"}
	if len(advertise) > 0 {
		args = append(args, advertise[0], r.addr)
	}
	r.p = testenv.Start(t, bin, args,
		[]string{"S3_KEY=" + bucket.AccessKey, "S3_SECRET=" + bucket.SecretKey, "PEER_SECRET=cluster-test-peer-secret"},
		func() error {
			if s := r.readyz(); !strings.HasPrefix(s, "ok") {
				return fmt.Errorf("readyz: %s", s)
			}
			return nil
		})
	return r
}

func redisPort(t *testing.T, addr string) int {
	var port int
	if _, err := fmt.Sscanf(addr[strings.LastIndex(addr, ":")+1:], "%d", &port); err != nil {
		t.Fatal(err)
	}
	return port
}
