package registry_test

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/entrepot/entrepot/internal/cache"
	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/validate"
)

// policies is the approved-images configuration of the tests: Docker Hub
// serves only node 20 and nginx but its latest; ghcr.io everything but
// team/.
var policies = map[string]cache.ImagePolicy{
	"docker.io": {ApprovedOnly: true, Allow: []string{"library/node:20*", "library/nginx"}, Deny: []string{"library/nginx:latest"}},
	"ghcr.io":   {Deny: []string{"team/*"}},
}

// A denied image is answered 403 DENIED, naming the policy, on every
// endpoint and route, GET and HEAD alike, and the origin gets no request
// at all, not even a HEAD.
func TestDeniedImagesNeverReachTheOrigin(t *testing.T) {
	o := newOrigin(t)
	redis := push(t, o, "library/redis:7", 1024, 1)
	app := push(t, o, "team/app:1", 1024, 1)
	push(t, o, "library/nginx:latest", 1024, 1)
	push(t, o, "library/node:18", 1024, 1)
	c := newCache(t, o, options{ttl: time.Hour, policies: policies})
	o.reset()

	redisDigest := digestOf(t, redis)
	redisLayers, _ := redis.Layers()
	redisLayer := digestOf(t, redisLayers[0])
	appLayers, _ := app.Layers()
	appDigest, appLayer := digestOf(t, app), digestOf(t, appLayers[0])
	notApproved := "is not approved: upstreams[docker.io].approved_only is set and no allow pattern matches"
	for _, tc := range []struct {
		name, path, want string
	}{
		{"path prefix, tag outside allow", "/v2/docker.io/library/redis/manifests/7", "docker.io/library/redis:7 " + notApproved},
		{"path prefix with the library/ rule: deny wins over allow", "/v2/docker.io/nginx/manifests/latest",
			`docker.io/library/nginx:latest is denied by upstreams[docker.io].deny "library/nginx:latest"`},
		{"default upstream", "/v2/library/node/manifests/18", "docker.io/library/node:18 " + notApproved},
		{"default upstream adds library/", "/v2/node/manifests/18", "docker.io/library/node:18 " + notApproved},
		{"ns", "/v2/team/app/manifests/1?ns=ghcr.io", `ghcr.io/team/app:1 is denied by upstreams[ghcr.io].deny "team/*"`},
		{"ns by URL host", "/v2/library/redis/manifests/7?ns=" + o.host(), "docker.io/library/redis:7 " + notApproved},
		{"manifest by digest", "/v2/docker.io/library/redis/manifests/" + redisDigest, "docker.io/library/redis@" + redisDigest + " " + notApproved},
		{"blob", "/v2/ghcr.io/team/app/blobs/" + appLayer, "ghcr.io/team/app@" + appLayer + ` is denied by upstreams[ghcr.io].deny "team/*"`},
		{"blob of a repository outside allow", "/v2/library/redis/blobs/" + redisLayer, "docker.io/library/redis@" + redisLayer + " " + notApproved},
		{"tag list", "/v2/library/redis/tags/list", "docker.io/library/redis " + notApproved},
		{"tag list by ns", "/v2/team/app/tags/list?ns=ghcr.io", `ghcr.io/team/app is denied by upstreams[ghcr.io].deny "team/*"`},
		{"referrers", "/v2/team/app/referrers/" + appDigest + "?ns=ghcr.io", "ghcr.io/team/app@" + appDigest + ` is denied by upstreams[ghcr.io].deny "team/*"`},
	} {
		for _, method := range []string{"GET", "HEAD"} {
			t.Run(tc.name+" "+method, func(t *testing.T) {
				resp, body := c.do(t, method, tc.path)
				if resp.StatusCode != http.StatusForbidden || resp.Header.Get("Cache-Status") != "Entrepot; detail=denied" ||
					resp.Header.Get("Content-Type") != "application/json" || resp.Header.Get("Docker-Content-Digest") != "" {
					t.Fatalf("%d %v %s", resp.StatusCode, resp.Header, body)
				}
				if strings.Contains(tc.path, "ns=ghcr.io") && resp.Header.Get("OCI-Namespace") != "ghcr.io" {
					t.Errorf("OCI-Namespace = %q", resp.Header.Get("OCI-Namespace"))
				}
				if method == "HEAD" {
					if len(body) != 0 {
						t.Fatalf("HEAD with a body: %s", body)
					}
					return
				}
				var e struct {
					Errors []struct{ Code, Message string }
				}
				if err := json.Unmarshal(body, &e); err != nil || len(e.Errors) != 1 || e.Errors[0].Code != "DENIED" || e.Errors[0].Message != tc.want {
					t.Fatalf("body %s, want DENIED %q", body, tc.want)
				}
			})
		}
	}
	if n := o.total(); n != 0 {
		t.Fatalf("the origin got %d requests for denied images: %v", n, o.counts)
	}
	// The access log and the metrics count them as denied.
	denied := 0.0
	for series, v := range scrape(t, c) {
		if strings.HasPrefix(series, "entrepot_requests_total{") && strings.Contains(series, `result="denied"`) {
			denied += v
		}
	}
	if denied != 24 {
		t.Fatalf("requests counted denied: %v, want 24", denied)
	}
}

// What the policy approves pulls whole through every route, and checks
// out; by digest, a repository with an approved tag is approved.
func TestApprovedImagesPull(t *testing.T) {
	o := newOrigin(t)
	node20 := push(t, o, "library/node:20.11", 4096, 2)
	node18 := push(t, o, "library/node:18", 4096, 2)
	nginx := push(t, o, "library/nginx:1.27", 4096, 2)
	app := push(t, o, "library/app:1", 4096, 2)
	c := newCache(t, o, options{ttl: time.Hour, policies: policies})
	for _, tc := range []struct {
		name, ref string
		want      v1.Image
	}{
		{"path prefix", c.host() + "/docker.io/library/node:20.11", node20},
		{"default upstream adds library/", c.host() + "/nginx:1.27", nginx},
		{"other upstream, not denied", c.host() + "/ghcr.io/library/app:1", app},
		{"by digest, of a repository an allowed tag names", c.host() + "/docker.io/library/node@" + digestOf(t, node18), node18},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ref, err := name.ParseReference(tc.ref, name.Insecure)
			if err != nil {
				t.Fatal(err)
			}
			img, err := remote.Image(ref)
			if err != nil {
				t.Fatal(err)
			}
			if got, want := digestOf(t, img), digestOf(t, tc.want); got != want {
				t.Fatalf("digest = %s, want %s", got, want)
			}
			if err := validate.Image(img); err != nil {
				t.Fatalf("validate: %v", err)
			}
		})
	}
}

// A cache restarted with a new policy on the same store stops serving the
// images it now denies, cached or not, and asks the origin nothing.
func TestCachedImageNewlyDeniedStopsBeingServed(t *testing.T) {
	o := newOrigin(t)
	nginx := push(t, o, "library/nginx:latest", 4096, 2)
	data := t.TempDir()
	before := newCache(t, o, options{ttl: time.Hour, dataDir: data})
	ref, _ := name.ParseReference(before.host()+"/library/nginx:latest", name.Insecure)
	img, err := remote.Image(ref)
	if err != nil {
		t.Fatal(err)
	}
	if err := validate.Image(img); err != nil {
		t.Fatal(err)
	}
	before.Close()

	after := newCache(t, o, options{ttl: time.Hour, dataDir: data, policies: map[string]cache.ImagePolicy{"docker.io": {Deny: []string{"library/nginx"}}}})
	o.reset()
	cfg, _ := nginx.ConfigName()
	for _, path := range []string{
		"/v2/library/nginx/manifests/latest",
		"/v2/docker.io/library/nginx/manifests/" + digestOf(t, nginx),
		"/v2/library/nginx/blobs/" + cfg.String(),
		"/v2/nginx/tags/list",
	} {
		for _, method := range []string{"GET", "HEAD"} {
			resp, body := after.do(t, method, path)
			if resp.StatusCode != http.StatusForbidden || (method == "GET" && !strings.Contains(string(body), `docker.io/library/nginx`)) {
				t.Fatalf("%s %s: %d %s", method, path, resp.StatusCode, body)
			}
		}
	}
	if n := o.total(); n != 0 {
		t.Fatalf("the origin got %d requests: %v", n, o.counts)
	}
}
