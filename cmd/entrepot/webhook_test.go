package main

import (
	"bytes"
	"crypto/tls"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/validate"
	jsonpatch "gopkg.in/evanphx/json-patch.v4"
	admissionv1 "k8s.io/api/admission/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	sigsyaml "sigs.k8s.io/yaml"

	"github.com/entrepot/entrepot/internal/tlsx/tlstest"
)

// webhookEnv is a running cache in front of three upstreams, and the
// webhook in front of it, each its own process.
type webhookEnv struct {
	bin        string
	cache      string // the cache's address, what images are rewritten to
	cacheConf  string
	cacheCmd   *exec.Cmd
	hook       string // the webhook's https URL
	client     *http.Client
	hub, ghcr  *origin
	private    *origin
	digests    map[string]v1.Hash // image as written in the pods → its manifest digest
	hookLog    *lockedBuffer
	webhookDir string
}

// lockedBuffer is a process's stderr, read while the process writes it.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// waitLog waits until the webhook's log holds s: the process writes it
// before it answers, but the pipe's reader may not have copied it yet.
func (e *webhookEnv) waitLog(t *testing.T, s string) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !strings.Contains(e.hookLog.String(), s) {
		if time.Now().After(deadline) {
			t.Errorf("the webhook's log has no %q:\n%s", s, e.hookLog)
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func (e *webhookEnv) startCache(t *testing.T) {
	t.Helper()
	e.cacheCmd = exec.Command(e.bin, "serve", "--config", e.cacheConf)
	e.cacheCmd.Stderr = io.Discard
	if err := e.cacheCmd.Start(); err != nil {
		t.Fatal(err)
	}
	cmd := e.cacheCmd
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	waitHTTP(t, "http://"+e.cache+"/readyz")
}

func (e *webhookEnv) stopCache() {
	e.cacheCmd.Process.Kill()
	e.cacheCmd.Wait()
}

// pushImage writes a random image to o as repo:tag and returns its digest.
func pushImage(t *testing.T, o *origin, repo, tag string) v1.Hash {
	t.Helper()
	img, err := random.Image(4<<10, 1)
	if err != nil {
		t.Fatal(err)
	}
	ref, err := name.ParseReference(strings.TrimPrefix(o.URL, "http://")+"/"+repo+":"+tag, name.Insecure)
	if err != nil {
		t.Fatal(err)
	}
	if err := remote.Write(ref, img); err != nil {
		t.Fatal(err)
	}
	d, _ := img.Digest()
	return d
}

func newWebhookEnv(t *testing.T) *webhookEnv {
	e := &webhookEnv{bin: build(t), cache: freeAddr(t), hub: newOrigin(t), ghcr: newOrigin(t), private: newOrigin(t), digests: map[string]v1.Hash{}, hookLog: &lockedBuffer{}}
	privateHost := strings.TrimPrefix(e.private.URL, "http://")
	e.digests["nginx:1.27"] = pushImage(t, e.hub, "library/nginx", "1.27")
	e.digests["busybox:1.36"] = pushImage(t, e.hub, "library/busybox", "1.36")
	app := pushImage(t, e.ghcr, "org/app", "v1")
	e.digests["ghcr.io/org/app@"+app.String()] = app
	e.digests[privateHost+"/team/api:2.1"] = pushImage(t, e.private, "team/api", "2.1")

	dir := t.TempDir()
	ups := fmt.Sprintf("upstreams:\n  - {name: docker.io, url: %s}\n  - {name: ghcr.io, url: %s}\n  - {name: private, url: %s}\n", e.hub.URL, e.ghcr.URL, e.private.URL)
	e.cacheConf = writeFile(t, dir, "cache.yaml", fmt.Sprintf("listen: %s\ndata: %s\nadmin: {listen: %s}\n%s", e.cache, filepath.Join(dir, "data"), freeAddr(t), ups))
	e.startCache(t)

	ca := tlstest.NewCA(t, "cluster")
	cert, key := ca.Server(t, "webhook")
	hookAddr := freeAddr(t)
	e.webhookDir = dir
	conf := writeFile(t, dir, "webhook.yaml", ups+fmt.Sprintf(`webhook:
  listen: %s
  tls: {cert: %s, key: %s}
  cache: %s
  namespace: entrepot
  exclude:
    namespaces: [kube-system, legacy]
    images: [docker.io/library/busybox*]
  ready_url: http://%s/readyz
  pull_secret: entrepot-pull
`, hookAddr, cert, key, e.cache, e.cache))
	cmd := exec.Command(e.bin, "webhook", "--config", conf)
	cmd.Stderr = e.hookLog
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	tr := &http.Transport{TLSClientConfig: &tls.Config{RootCAs: ca.Pool()}}
	t.Cleanup(tr.CloseIdleConnections)
	e.client = &http.Client{Transport: tr, Timeout: 10 * time.Second}
	e.hook = "https://" + hookAddr
	deadline := time.Now().Add(15 * time.Second)
	for {
		resp, err := e.client.Get(e.hook + "/healthz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				break
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("the webhook did not answer /healthz over HTTPS: %v\n%s", err, e.hookLog)
		}
		time.Sleep(20 * time.Millisecond)
	}
	return e
}

// review sends req as the API server does and returns the response.
func (e *webhookEnv) review(t *testing.T, req *admissionv1.AdmissionRequest) *admissionv1.AdmissionResponse {
	t.Helper()
	body, err := json.Marshal(admissionv1.AdmissionReview{
		TypeMeta: metav1.TypeMeta{APIVersion: "admission.k8s.io/v1", Kind: "AdmissionReview"},
		Request:  req,
	})
	if err != nil {
		t.Fatal(err)
	}
	return e.post(t, body, req.UID)
}

func (e *webhookEnv) post(t *testing.T, body []byte, uid types.UID) *admissionv1.AdmissionResponse {
	t.Helper()
	resp, err := e.client.Post(e.hook+"/mutate", "application/json", bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var out admissionv1.AdmissionReview
	if err := json.NewDecoder(resp.Body).Decode(&out); err != nil || resp.StatusCode != 200 {
		t.Fatalf("review answered %d: %v", resp.StatusCode, err)
	}
	if out.APIVersion != "admission.k8s.io/v1" || out.Kind != "AdmissionReview" || out.Response == nil {
		t.Fatalf("answer is not an admission.k8s.io/v1 AdmissionReview: %+v", out)
	}
	if out.Response.UID != uid || !out.Response.Allowed {
		t.Fatalf("answer: uid %q allowed %v; want uid %q, allowed", out.Response.UID, out.Response.Allowed, uid)
	}
	return out.Response
}

var podGVR = metav1.GroupVersionResource{Version: "v1", Resource: "pods"}

func podRequest(t *testing.T, uid string, op admissionv1.Operation, sub string, pod *corev1.Pod) *admissionv1.AdmissionRequest {
	raw, err := json.Marshal(pod)
	if err != nil {
		t.Fatal(err)
	}
	return &admissionv1.AdmissionRequest{
		UID: types.UID(uid), Kind: metav1.GroupVersionKind{Version: "v1", Kind: "Pod"}, Resource: podGVR,
		SubResource: sub, Namespace: pod.Namespace, Name: pod.Name, Operation: op, Object: runtime.RawExtension{Raw: raw},
	}
}

// applied is pod with the response's patch applied, as the API server
// applies it, decoded again (so the result is a valid pod).
func applied(t *testing.T, pod *corev1.Pod, resp *admissionv1.AdmissionResponse) *corev1.Pod {
	t.Helper()
	raw, _ := json.Marshal(pod)
	if resp.Patch == nil {
		return pod
	}
	if resp.PatchType == nil || *resp.PatchType != admissionv1.PatchTypeJSONPatch {
		t.Fatalf("patch type %v, want JSONPatch", resp.PatchType)
	}
	p, err := jsonpatch.DecodePatch(resp.Patch)
	if err != nil {
		t.Fatalf("the patch does not decode: %v\n%s", err, resp.Patch)
	}
	out, err := p.Apply(raw)
	if err != nil {
		t.Fatalf("the patch does not apply: %v\n%s", err, resp.Patch)
	}
	var got corev1.Pod
	dec := json.NewDecoder(bytes.NewReader(out))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&got); err != nil {
		t.Fatalf("the patched pod is not a pod: %v\n%s", err, out)
	}
	return &got
}

func images(cs []corev1.Container) []string {
	var out []string
	for _, c := range cs {
		out = append(out, c.Image)
	}
	return out
}

// pullThrough pulls ref (a rewritten image) through the cache and checks
// that it is the upstream's manifest.
func (e *webhookEnv) pullThrough(t *testing.T, ref string, want v1.Hash) {
	t.Helper()
	r, err := name.ParseReference(ref, name.Insecure)
	if err != nil {
		t.Fatalf("%s: %v", ref, err)
	}
	img, err := remote.Image(r)
	if err != nil {
		t.Fatalf("pull %s through the cache: %v", ref, err)
	}
	if err := validate.Image(img); err != nil {
		t.Fatalf("pull %s: %v", ref, err)
	}
	if d, _ := img.Digest(); d != want {
		t.Fatalf("pull %s: digest %s, want the upstream's %s", ref, d, want)
	}
}

func TestWebhook(t *testing.T) {
	e := newWebhookEnv(t)
	c := e.cache
	privateHost := strings.TrimPrefix(e.private.URL, "http://")
	var app string
	for image := range e.digests {
		if strings.HasPrefix(image, "ghcr.io/") {
			app = image
		}
	}
	pod := &corev1.Pod{
		TypeMeta:   metav1.TypeMeta{APIVersion: "v1", Kind: "Pod"},
		ObjectMeta: metav1.ObjectMeta{Name: "web", Namespace: "shop", Labels: map[string]string{"app": "web"}},
		Spec: corev1.PodSpec{
			InitContainers: []corev1.Container{
				{Name: "init0", Image: "busybox:1.36"}, // excluded by pattern
				{Name: "init1", Image: app},
				{Name: "init2", Image: "docker.io/library/nginx:1.27"},
			},
			Containers: []corev1.Container{
				{Name: "web", Image: "nginx:1.27"},
				{Name: "api", Image: privateHost + "/team/api:2.1"},
				{Name: "other", Image: "quay.io/prometheus/node-exporter:v1"}, // not an upstream
				{Name: "done", Image: c + "/docker.io/library/nginx:1.27"},    // already on the cache
			},
		},
	}
	want := map[string][]string{
		"init": {"busybox:1.36", c + "/" + app, c + "/docker.io/library/nginx:1.27"},
		"main": {c + "/docker.io/library/nginx:1.27", c + "/private/team/api:2.1", "quay.io/prometheus/node-exporter:v1", c + "/docker.io/library/nginx:1.27"},
	}

	// The readiness poller's first answer may take a moment.
	var resp *admissionv1.AdmissionResponse
	deadline := time.Now().Add(10 * time.Second)
	for {
		resp = e.review(t, podRequest(t, "create-1", admissionv1.Create, "", pod))
		if resp.Patch != nil || time.Now().After(deadline) {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	got := applied(t, pod, resp)
	if g := images(got.Spec.InitContainers); !slices.Equal(g, want["init"]) {
		t.Errorf("init containers: %q, want %q", g, want["init"])
	}
	if g := images(got.Spec.Containers); !slices.Equal(g, want["main"]) {
		t.Errorf("containers: %q, want %q", g, want["main"])
	}
	if len(got.Spec.ImagePullSecrets) != 1 || got.Spec.ImagePullSecrets[0].Name != "entrepot-pull" {
		t.Errorf("imagePullSecrets %v, want [entrepot-pull] added on CREATE", got.Spec.ImagePullSecrets)
	}
	if len(resp.Warnings) != 0 {
		t.Errorf("warnings %q with the cache ready", resp.Warnings)
	}
	// Idempotent: the rewritten pod, reviewed again (reinvocation), gets
	// no patch.
	if again := e.review(t, podRequest(t, "create-2", admissionv1.Create, "", got)); again.Patch != nil {
		t.Errorf("the rewritten pod got a patch again: %s", again.Patch)
	}
	// Every rewritten reference resolves through the running cache, to the
	// upstream's digest.
	for image, d := range e.digests {
		to := image
		for i, c := range pod.Spec.InitContainers {
			if c.Image == image {
				to = got.Spec.InitContainers[i].Image
			}
		}
		for i, c := range pod.Spec.Containers {
			if c.Image == image {
				to = got.Spec.Containers[i].Image
			}
		}
		if to == image {
			continue // left alone (busybox, excluded)
		}
		e.pullThrough(t, to, d)
	}

	// A pod that already has pull secrets gets one more, at the end.
	withSecret := pod.DeepCopy()
	withSecret.Spec.ImagePullSecrets = []corev1.LocalObjectReference{{Name: "own"}}
	got = applied(t, withSecret, e.review(t, podRequest(t, "create-3", admissionv1.Create, "", withSecret)))
	if n := got.Spec.ImagePullSecrets; len(n) != 2 || n[0].Name != "own" || n[1].Name != "entrepot-pull" {
		t.Errorf("imagePullSecrets %v, want [own entrepot-pull]", n)
	}

	// UPDATE rewrites too, without adding the secret.
	got = applied(t, pod, e.review(t, podRequest(t, "update-1", admissionv1.Update, "", pod)))
	if g := images(got.Spec.Containers); !slices.Equal(g, want["main"]) || len(got.Spec.ImagePullSecrets) != 0 {
		t.Errorf("UPDATE: containers %q, pull secrets %v", g, got.Spec.ImagePullSecrets)
	}

	// kubectl debug: the ephemeralcontainers subresource; only the
	// ephemeral containers are patched (the rest is not its to change).
	debug := pod.DeepCopy()
	debug.Spec.EphemeralContainers = []corev1.EphemeralContainer{
		{EphemeralContainerCommon: corev1.EphemeralContainerCommon{Name: "debugger-1", Image: c + "/docker.io/library/nginx:1.27"}},
		{EphemeralContainerCommon: corev1.EphemeralContainerCommon{Name: "debugger-2", Image: "nginx:1.27"}},
	}
	got = applied(t, debug, e.review(t, podRequest(t, "debug-1", admissionv1.Update, "ephemeralcontainers", debug)))
	if g := got.Spec.EphemeralContainers; g[0].Image != c+"/docker.io/library/nginx:1.27" || g[1].Image != c+"/docker.io/library/nginx:1.27" {
		t.Errorf("ephemeral containers: %q %q", g[0].Image, g[1].Image)
	}
	if g := images(got.Spec.Containers); g[0] != "nginx:1.27" || len(got.Spec.ImagePullSecrets) != 0 {
		t.Errorf("the ephemeralcontainers subresource changed the containers or the secrets: %q", g)
	}

	// Excluded namespaces (kube-system, legacy, its own) and the opt-out
	// label: no patch.
	for _, ns := range []string{"kube-system", "legacy", "entrepot"} {
		p := pod.DeepCopy()
		p.Namespace = ns
		if r := e.review(t, podRequest(t, "ns-"+ns, admissionv1.Create, "", p)); r.Patch != nil {
			t.Errorf("namespace %s: patched", ns)
		}
	}
	optOut := pod.DeepCopy()
	optOut.Labels["entrepot.io/rewrite"] = "false"
	if r := e.review(t, podRequest(t, "opt-out", admissionv1.Create, "", optOut)); r.Patch != nil {
		t.Error("a pod labelled entrepot.io/rewrite=false: patched")
	}

	// Malformed or unexpected reviews: allowed, no patch, a log line.
	deploy := podRequest(t, "deploy", admissionv1.Create, "", pod)
	deploy.Resource = metav1.GroupVersionResource{Group: "apps", Version: "v1", Resource: "deployments"}
	if r := e.review(t, deploy); r.Patch != nil {
		t.Error("a Deployment's review: patched")
	}
	del := podRequest(t, "delete", admissionv1.Delete, "", pod)
	if r := e.review(t, del); r.Patch != nil {
		t.Error("a DELETE: patched")
	}
	notPod := podRequest(t, "not-a-pod", admissionv1.Create, "", pod)
	notPod.Object.Raw = []byte(`[1, 2, 3]`)
	if r := e.review(t, notPod); r.Patch != nil {
		t.Error("an object that is not a pod: patched")
	}
	for _, body := range []string{"not json", `{"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview"}`, `{"request": 5}`, ""} {
		if r := e.post(t, []byte(body), ""); r.Patch != nil {
			t.Errorf("body %q: patched", body)
		}
	}
	if resp, err := e.client.Get(e.hook + "/mutate"); err != nil || resp.StatusCode != http.StatusMethodNotAllowed {
		t.Errorf("GET /mutate: %v %v, want 405", resp.StatusCode, err)
	} else {
		resp.Body.Close()
	}
	e.waitLog(t, "malformed admission review")

	// The cache goes away: pods are admitted unchanged with a warning;
	// when it is back, the rewriting resumes.
	e.stopCache()
	waitReview := func(what string, ok func(*admissionv1.AdmissionResponse) bool) *admissionv1.AdmissionResponse {
		deadline := time.Now().Add(15 * time.Second)
		for {
			r := e.review(t, podRequest(t, "ready-"+what, admissionv1.Create, "", pod))
			if ok(r) {
				return r
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s: last answer %+v\n%s", what, r, e.hookLog)
			}
			time.Sleep(200 * time.Millisecond)
		}
	}
	down := waitReview("cache down", func(r *admissionv1.AdmissionResponse) bool { return r.Patch == nil })
	if len(down.Warnings) != 1 || !strings.Contains(down.Warnings[0], "not ready") || !strings.Contains(down.Warnings[0], c) {
		t.Errorf("cache down: warnings %q, want one naming the cache as not ready", down.Warnings)
	}
	e.waitLog(t, "the cache is not ready")
	e.startCache(t)
	up := waitReview("cache back", func(r *admissionv1.AdmissionResponse) bool { return r.Patch != nil })
	if len(up.Warnings) != 0 {
		t.Errorf("cache back: warnings %q", up.Warnings)
	}
}

func TestWebhookManifests(t *testing.T) {
	bin := build(t)
	dir := t.TempDir()
	ca := tlstest.NewCA(t, "cluster")
	cert, key := ca.Server(t, "webhook")
	conf := writeFile(t, dir, "webhook.yaml", fmt.Sprintf(`upstreams:
  - {name: docker.io, url: "https://registry-1.docker.io"}
  - {name: corp, url: "https://registry.corp.example:5443", username: ci, password_env: UNSET_IN_THE_WEBHOOK}
webhook:
  tls: {cert: %s, key: %s}
  cache: cache.corp.example:5000
  exclude: {images: ["docker.io/library/busybox*"]}
  pull_secret: entrepot-pull
`, cert, key))
	stdout, stderr, code := run(t, bin, "webhook", "manifests", "--config", conf, "--namespace", "infra", "--image", "registry.corp.example:5443/entrepot:1.0")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	docs := strings.Split(stdout, "\n---\n")
	if len(docs) != 5 {
		t.Fatalf("%d documents, want a comment and 4 objects:\n%s", len(docs), stdout)
	}
	var cm corev1.ConfigMap
	var dep struct {
		Kind string
		Spec struct {
			Template corev1.PodTemplateSpec
		}
	}
	var svc corev1.Service
	var mwc struct {
		Kind     string
		Webhooks []struct {
			Name         string
			ClientConfig struct {
				CABundle []byte
				Service  struct {
					Namespace, Name, Path string
					Port                  int32
				}
			}
			Rules []struct {
				Operations, Resources []string
			}
			FailurePolicy, SideEffects, ReinvocationPolicy string
			TimeoutSeconds                                 int32
			NamespaceSelector, ObjectSelector              metav1.LabelSelector
			AdmissionReviewVersions                        []string
		}
	}
	for i, v := range []any{&cm, &dep, &svc, &mwc} {
		if err := sigsyaml.Unmarshal([]byte(docs[i+1]), v); err != nil {
			t.Fatalf("document %d: %v\n%s", i+1, err, docs[i+1])
		}
	}
	if cm.Namespace != "infra" || dep.Kind != "Deployment" || svc.Spec.Ports[0].Port != 443 || mwc.Kind != "MutatingWebhookConfiguration" {
		t.Fatalf("objects: %s/%s, %s, service port %d, %s", cm.Namespace, cm.Name, dep.Kind, svc.Spec.Ports[0].Port, mwc.Kind)
	}
	w := mwc.Webhooks[0]
	pem, _ := os.ReadFile(cert)
	if !bytes.Equal(w.ClientConfig.CABundle, pem) {
		t.Error("caBundle is not the certificate given")
	}
	if w.FailurePolicy != "Ignore" || w.SideEffects != "None" || w.TimeoutSeconds != 5 || w.ReinvocationPolicy != "IfNeeded" {
		t.Errorf("failurePolicy %s, sideEffects %s, timeoutSeconds %d, reinvocationPolicy %s", w.FailurePolicy, w.SideEffects, w.TimeoutSeconds, w.ReinvocationPolicy)
	}
	if w.ClientConfig.Service.Namespace != "infra" || w.ClientConfig.Service.Path != "/mutate" || w.ClientConfig.Service.Name != svc.Name {
		t.Errorf("service %+v", w.ClientConfig.Service)
	}
	if r := w.Rules[0]; !slices.Equal(r.Operations, []string{"CREATE", "UPDATE"}) || !slices.Equal(r.Resources, []string{"pods", "pods/ephemeralcontainers"}) {
		t.Errorf("rules %+v", w.Rules)
	}
	sel := w.NamespaceSelector.MatchExpressions
	if len(sel) != 2 || sel[0].Key != "kubernetes.io/metadata.name" || sel[0].Operator != "NotIn" || !slices.Equal(sel[0].Values, []string{"kube-system", "infra"}) ||
		sel[1].Key != "entrepot.io/rewrite" || !slices.Equal(sel[1].Values, []string{"false"}) {
		t.Errorf("namespaceSelector %+v", sel)
	}
	pod := dep.Spec.Template
	if pod.Labels["entrepot.io/rewrite"] != "false" || pod.Spec.Containers[0].Image != "registry.corp.example:5443/entrepot:1.0" {
		t.Errorf("the webhook's own pod: labels %v, image %s", pod.Labels, pod.Spec.Containers[0].Image)
	}
	// The ConfigMap's configuration is one the webhook starts on (with the
	// test's certificate in place of the pod's mounted one), and it holds
	// no credential.
	file := writeFile(t, dir, "incluster.yaml", cm.Data["webhook.yaml"])
	if strings.Contains(cm.Data["webhook.yaml"], "password") || strings.Contains(cm.Data["webhook.yaml"], "username") {
		t.Errorf("the ConfigMap names a credential:\n%s", cm.Data["webhook.yaml"])
	}
	out, stderr, code := run(t, bin, "webhook", "manifests", "--config", file, "--tls-cert", cert, "--tls-key", key, "--namespace", "infra")
	if code != 0 || !strings.Contains(out, "cache.corp.example:5000") {
		t.Fatalf("the ConfigMap's configuration: exit %d, %s", code, stderr)
	}
	if !strings.Contains(cm.Data["webhook.yaml"], "/etc/entrepot-webhook/tls/tls.crt") || !strings.Contains(cm.Data["webhook.yaml"], "registry.corp.example:5443") {
		t.Errorf("the ConfigMap's configuration:\n%s", cm.Data["webhook.yaml"])
	}

	// Bad configurations name the key.
	for _, tc := range []struct{ conf, want string }{
		{"webhook: {cache: c.example:5000}\n", "webhook.tls.cert"},
		{fmt.Sprintf("webhook: {tls: {cert: %s, key: %s}}\n", cert, key), "webhook.cache"},
		{fmt.Sprintf("webhook: {tls: {cert: %s, key: %s}, cache: \"https://c.example\"}\n", cert, key), "without a scheme"},
		{fmt.Sprintf("webhook: {tls: {cert: %s, key: %s}, cache: c.example, exclude: {images: [busybox]}}\n", cert, key), "webhook.exclude.images[0]"},
		{fmt.Sprintf("webhook: {tls: {cert: %s, key: %s}, cache: c.example, ready_url: \"ftp://x\"}\n", cert, key), "webhook.ready_url"},
		{"webhook: {chache: c.example}\n", `unknown key "chache"`},
	} {
		f := writeFile(t, dir, "bad.yaml", tc.conf)
		for _, args := range [][]string{{"webhook", "--config", f}, {"webhook", "manifests", "--config", f}} {
			_, stderr, code := run(t, bin, args...)
			if code != 2 || !strings.Contains(stderr, tc.want) {
				t.Errorf("%v with %q: exit %d, %q; want 2 naming %q", args, tc.conf, code, stderr, tc.want)
			}
		}
	}
}

func TestRewriteCommand(t *testing.T) {
	bin := build(t)
	dir := t.TempDir()
	conf := writeFile(t, dir, "entrepot.yaml", "upstreams:\n  - {name: docker.io, url: \"https://registry-1.docker.io\"}\n  - {name: corp, url: \"https://registry.corp.example:5443\"}\n")
	stdout, stderr, code := run(t, bin, "rewrite", "--cache", "cache.example:5000", "--config", conf,
		"nginx:1.27", "registry.corp.example:5443/team/app@sha256:"+strings.Repeat("ab", 32), "ghcr.io/org/app:1", "cache.example:5000/docker.io/library/nginx")
	want := "cache.example:5000/docker.io/library/nginx:1.27\ncache.example:5000/corp/team/app@sha256:" + strings.Repeat("ab", 32) + "\nghcr.io/org/app:1\ncache.example:5000/docker.io/library/nginx\n"
	if code != 0 || stdout != want {
		t.Fatalf("rewrite IMAGE...: exit %d, %q (stderr %q), want %q", code, stdout, stderr, want)
	}
	// The built-in upstreams without --config: ghcr.io is one.
	if stdout, _, _ := run(t, bin, "rewrite", "--cache", "cache.example/mirror", "ghcr.io/org/app:1"); stdout != "cache.example/mirror/ghcr.io/org/app:1\n" {
		t.Fatalf("built-in upstreams: %q", stdout)
	}

	df := writeFile(t, dir, "Dockerfile", "FROM --platform=$BUILDPLATFORM golang:1.23 AS build\nFROM build AS test\nFROM gcr.io/distroless/static\nCOPY --from=build /app /app\n")
	stdout, stderr, code = run(t, bin, "rewrite", "--cache", "cache.example:5000", "-f", df)
	want = "FROM --platform=$BUILDPLATFORM cache.example:5000/docker.io/library/golang:1.23 AS build\nFROM build AS test\nFROM cache.example:5000/gcr.io/distroless/static\nCOPY --from=build /app /app\n"
	if code != 0 || stdout != want || !strings.Contains(stderr, df+":1: golang:1.23 -> cache.example:5000/docker.io/library/golang:1.23") {
		t.Fatalf("rewrite -f Dockerfile: exit %d\n%s\nstderr %s", code, stdout, stderr)
	}
	k8s := writeFile(t, dir, "app.yaml", "apiVersion: apps/v1\nkind: Deployment\nspec:\n  template:\n    spec:\n      containers:\n      - {name: a, image: nginx}  # comment\n")
	stdout, _, code = run(t, bin, "rewrite", "--cache", "cache.example:5000", "-f", k8s)
	if code != 0 || stdout != strings.Replace(string(mustRead(t, k8s)), "image: nginx", "image: cache.example:5000/docker.io/library/nginx", 1) {
		t.Fatalf("rewrite -f app.yaml: exit %d\n%s", code, stdout)
	}
	// Standard input, its format told by its content.
	cmd := exec.Command(bin, "rewrite", "--cache", "cache.example:5000", "-f", "-")
	cmd.Stdin = strings.NewReader("# a comment\nFROM alpine:3.20\n")
	out, err := cmd.Output()
	if err != nil || string(out) != "# a comment\nFROM cache.example:5000/docker.io/library/alpine:3.20\n" {
		t.Fatalf("rewrite -f -: %v %q", err, out)
	}
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"rewrite", "nginx"}, "--cache is required"},
		{[]string{"rewrite", "--cache", "entrepot", "nginx"}, "not a registry host"},
		{[]string{"rewrite", "--cache", "c.example"}, "give images or -f FILE"},
		{[]string{"rewrite", "--cache", "c.example", "-f", df, "--format", "toml"}, "want yaml or dockerfile"},
		{[]string{"rewrite", "--cache", "c.example", "--exclude", "busybox", "nginx"}, "must start with a registry"},
	} {
		_, stderr, code := run(t, bin, tc.args...)
		if code != 2 || !strings.Contains(stderr, tc.want) {
			t.Errorf("%v: exit %d, %q; want 2 naming %q", tc.args, code, stderr, tc.want)
		}
	}
	bad := writeFile(t, dir, "bad.yaml", "kind: Pod\nspec: [\n")
	if _, stderr, code := run(t, bin, "rewrite", "--cache", "c.example", "-f", bad); code != 1 || !strings.Contains(stderr, "bad.yaml") {
		t.Errorf("a broken YAML file: exit %d, %q", code, stderr)
	}
}

func mustRead(t *testing.T, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}
