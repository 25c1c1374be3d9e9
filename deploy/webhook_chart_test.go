package deploy_test

import (
	"bytes"
	"encoding/base64"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/entrepot/entrepot/internal/config"
	"github.com/entrepot/entrepot/internal/testenv"
	"github.com/entrepot/entrepot/internal/tlsx/tlstest"
	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
)

// TestHelmChartWebhook renders the chart with the admission webhook on and
// checks its objects: the webhook's pods are its Service's and no selector
// of the cache's finds them, its configuration loads with the real loader
// in the pod's environment and says what the values say, and the
// MutatingWebhookConfiguration fails open, reaches the Service and skips
// the namespaces the webhook excludes.
func TestHelmChartWebhook(t *testing.T) {
	helm := testenv.Binary(t, "helm", "ENTREPOT_HELM", "go install helm.sh/helm/v4/cmd/helm@v4.3.2")
	d := readDockerfile(t)
	if c := renderChart(t, helm, ""); c.webhook != nil {
		t.Fatalf("the defaults render webhook objects: %q", c.webhook.kinds)
	}
	ca := tlstest.NewCA(t, "cluster")
	cert, key := ca.Server(t, "webhook")
	pem, err := os.ReadFile(cert)
	if err != nil {
		t.Fatal(err)
	}
	c := renderChart(t, helm, `
upstreams:
  - name: docker.io
    url: https://registry-1.docker.io
    username: alice
    password_env: HUB_TOKEN
  - name: corp
    url: https://registry.corp.example:5443
env:
  - name: HUB_TOKEN
    valueFrom:
      secretKeyRef: {name: hub, key: token}
webhook:
  enabled: true
  cache: cache.example.com:5000
  caBundle: `+base64.StdEncoding.EncodeToString(pem)+`
  excludeNamespaces: [kube-system, legacy]
  excludeImages: [docker.io/library/busybox*]
  pullSecret: entrepot-pull
`)
	w := c.webhook
	if w == nil || !slices.Equal(w.kinds, []string{"ConfigMap", "Deployment", "MutatingWebhookConfiguration", "Service"}) {
		t.Fatalf("webhook objects: %+v", w)
	}
	pod := w.deployment.Spec.Template
	checkSelects(t, "the webhook Deployment's selector", w.deployment.Spec.Selector.MatchLabels, pod.Labels)
	checkSelects(t, "the webhook Service's selector", w.service.Spec.Selector, pod.Labels)
	for what, sel := range map[string]map[string]string{
		"the cache's Service":             c.service.Spec.Selector,
		"the cache's Deployment":          c.deployment.Spec.Selector.MatchLabels,
		"the cache's PodDisruptionBudget": c.pdb.Spec.Selector.MatchLabels,
	} {
		if selects(sel, pod.Labels) {
			t.Errorf("%s selects the webhook's pods (%v)", what, pod.Labels)
		}
	}
	if pod.Labels["entrepot.io/rewrite"] != "false" {
		t.Errorf("the webhook's pods are not opted out of rewriting: %v", pod.Labels)
	}
	ctr := pod.Spec.Containers[0]
	if len(ctr.Command) < 2 || ctr.Command[0] != d.entrypoint[0] || ctr.Command[1] != "webhook" {
		t.Fatalf("command %q: want the image's binary %s, then webhook", ctr.Command, d.entrypoint[0])
	}
	if sc := ctr.SecurityContext; sc == nil || sc.ReadOnlyRootFilesystem == nil || !*sc.ReadOnlyRootFilesystem ||
		pod.Spec.SecurityContext == nil || pod.Spec.SecurityContext.RunAsNonRoot == nil || !*pod.Spec.SecurityContext.RunAsNonRoot {
		t.Errorf("the webhook's container may run as root or write its root filesystem")
	}

	// The configuration, loaded as the container does: its flags, its
	// environment (the downward API's namespace), the test's certificate
	// where the Secret's volume puts the pod's.
	file, ok := w.configMap.Data["webhook.yaml"]
	if !ok {
		t.Fatal("the webhook's ConfigMap has no webhook.yaml")
	}
	if strings.Contains(file, "password") || strings.Contains(file, "alice") {
		t.Errorf("the webhook's configuration holds a credential:\n%s", file)
	}
	dir := t.TempDir()
	path := filepath.Join(dir, "webhook.yaml")
	if err := os.WriteFile(path, []byte(file), 0o644); err != nil {
		t.Fatal(err)
	}
	args := slices.Clone(ctr.Command[2:])
	for i, a := range args {
		if strings.HasPrefix(a, "/etc/entrepot-webhook/config/") {
			if m := volumeMount(ctr, "/etc/entrepot-webhook/config"); m == nil || volume(pod.Spec, m.Name).ConfigMap.Name != w.configMap.Name {
				t.Fatalf("%s is not the webhook's ConfigMap", a)
			}
			args[i] = path
		}
	}
	env := map[string]string{}
	for _, e := range ctr.Env {
		if e.ValueFrom != nil && e.ValueFrom.FieldRef != nil && e.ValueFrom.FieldRef.FieldPath == "metadata.namespace" {
			env[e.Name] = "registry"
		}
	}
	cfg, err := config.ParseWebhook(append(args, "--tls-cert", cert, "--tls-key", key), func(k string) string { return env[k] })
	if err != nil {
		t.Fatalf("the webhook's configuration does not load: %v\n%s", err, file)
	}
	if cfg.Cache != "cache.example.com:5000" || cfg.PullSecret != "entrepot-pull" || !cfg.RequireReady ||
		cfg.ReadyURL != "http://cache-entrepot.registry.svc:5000/readyz" ||
		!slices.Equal(cfg.ExcludeNamespaces, []string{"kube-system", "legacy", "registry"}) ||
		!slices.Equal(cfg.ExcludeImages, []string{"docker.io/library/busybox*"}) {
		t.Errorf("webhook configuration %+v", cfg)
	}
	var names []string
	for _, u := range cfg.Upstreams {
		names = append(names, u.Name)
	}
	if !slices.Equal(names, []string{"docker.io", "corp"}) {
		t.Errorf("upstreams %q, want the cache's", names)
	}
	if got := containerPort(t, ctr, w.service.Spec.Ports[0].TargetPort); ":"+strconv.Itoa(int(got)) != cfg.Listen {
		t.Errorf("the Service reaches port %d; the webhook listens on %s", got, cfg.Listen)
	}
	if m := volumeMount(ctr, "/etc/entrepot-webhook/tls"); m == nil || volume(pod.Spec, m.Name).Secret == nil {
		t.Error("the certificate is not mounted from a Secret")
	}

	// The registration.
	mwc := w.config
	if len(mwc.Webhooks) != 1 {
		t.Fatalf("%d webhooks", len(mwc.Webhooks))
	}
	h := mwc.Webhooks[0]
	if h.FailurePolicy == nil || *h.FailurePolicy != admissionregistrationv1.Ignore ||
		h.SideEffects == nil || *h.SideEffects != admissionregistrationv1.SideEffectClassNone ||
		h.TimeoutSeconds == nil || *h.TimeoutSeconds != 5 ||
		h.ReinvocationPolicy == nil || *h.ReinvocationPolicy != admissionregistrationv1.IfNeededReinvocationPolicy {
		t.Errorf("failurePolicy, sideEffects, timeoutSeconds, reinvocationPolicy: %+v", h)
	}
	if s := h.ClientConfig.Service; s == nil || s.Name != w.service.Name || s.Namespace != "registry" || s.Path == nil || *s.Path != "/mutate" {
		t.Errorf("clientConfig.service %+v", h.ClientConfig.Service)
	}
	if !bytes.Equal(h.ClientConfig.CABundle, pem) {
		t.Error("caBundle is not the certificate given")
	}
	if r := h.Rules; len(r) != 1 || !slices.Equal(r[0].Resources, []string{"pods", "pods/ephemeralcontainers"}) ||
		!slices.Equal(r[0].Operations, []admissionregistrationv1.OperationType{"CREATE", "UPDATE"}) {
		t.Errorf("rules %+v", h.Rules)
	}
	sel := h.NamespaceSelector.MatchExpressions
	if len(sel) != 2 || sel[0].Key != "kubernetes.io/metadata.name" || !slices.Equal(sel[0].Values, cfg.ExcludeNamespaces) ||
		sel[1].Key != "entrepot.io/rewrite" {
		t.Errorf("namespaceSelector %+v, want the exclusions %q and the opt-out label", sel, cfg.ExcludeNamespaces)
	}

	// Without webhook.cache, the chart says what is missing.
	out, err := exec.Command(helm, "template", "cache", chartDir, "--set", "webhook.enabled=true").CombinedOutput()
	if err == nil || !strings.Contains(string(out), "webhook.cache is required") {
		t.Errorf("webhook.enabled without webhook.cache: %v\n%s", err, out)
	}
}

// selects tells whether selector (non-empty) matches labels.
func selects(selector, labels map[string]string) bool {
	if len(selector) == 0 {
		return false
	}
	for k, v := range selector {
		if labels[k] != v {
			return false
		}
	}
	return true
}
