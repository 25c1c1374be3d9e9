package deploy_test

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/entrepot/entrepot/internal/config"
	yaml "go.yaml.in/yaml/v3"
	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	sigsyaml "sigs.k8s.io/yaml"
)

// chart is the objects the chart renders, one of each kind at most.
type chart struct {
	kinds          []string
	deployment     *appsv1.Deployment
	service        *corev1.Service
	configMap      *corev1.ConfigMap
	pdb            *policyv1.PodDisruptionBudget
	serviceAccount *corev1.ServiceAccount
	serviceMonitor *serviceMonitor
	// webhook holds the admission webhook's objects (webhook.enabled),
	// told from the cache's by their component label.
	webhook *webhookObjects
}

// webhookObjects are the webhook's objects in a rendered chart.
type webhookObjects struct {
	kinds      []string
	configMap  *corev1.ConfigMap
	deployment *appsv1.Deployment
	service    *corev1.Service
	config     *admissionregistrationv1.MutatingWebhookConfiguration
}

// serviceMonitor is the part of the Prometheus operator's ServiceMonitor
// the chart writes (its Go types are a module of their own).
type serviceMonitor struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata"`
	Spec              struct {
		Selector  metav1.LabelSelector `json:"selector"`
		Endpoints []struct {
			Port     string `json:"port"`
			Path     string `json:"path"`
			Interval string `json:"interval"`
		} `json:"endpoints"`
	} `json:"spec"`
}

var documentSeparator = regexp.MustCompile(`(?m)^---\s*$`)

// renderChart runs helm template with values (a values file; none if
// empty) and decodes each document strictly: an unknown field, a
// duplicate one or a value of the wrong type fails the test.
func renderChart(t *testing.T, helm, values string) chart {
	t.Helper()
	args := []string{"template", "cache", chartDir, "--namespace", "registry"}
	if values != "" {
		path := filepath.Join(t.TempDir(), "values.yaml")
		if err := os.WriteFile(path, []byte(values), 0o644); err != nil {
			t.Fatal(err)
		}
		args = append(args, "--values", path)
	}
	cmd := exec.Command(helm, args...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("helm %s: %v\n%s", strings.Join(args, " "), err, stderr.String())
	}

	var c chart
	for _, doc := range documentSeparator.Split(string(out), -1) {
		var meta metav1.TypeMeta
		if err := sigsyaml.Unmarshal([]byte(doc), &meta); err != nil {
			t.Fatalf("a rendered document is not YAML: %v\n%s", err, doc)
		}
		if meta.Kind == "" {
			continue // comments only
		}
		var obj any
		if isWebhook(doc) {
			if c.webhook == nil {
				c.webhook = &webhookObjects{}
			}
			w := c.webhook
			switch meta.APIVersion + " " + meta.Kind {
			case "v1 ConfigMap":
				w.configMap = new(corev1.ConfigMap)
				obj = w.configMap
			case "apps/v1 Deployment":
				w.deployment = new(appsv1.Deployment)
				obj = w.deployment
			case "v1 Service":
				w.service = new(corev1.Service)
				obj = w.service
			case "admissionregistration.k8s.io/v1 MutatingWebhookConfiguration":
				w.config = new(admissionregistrationv1.MutatingWebhookConfiguration)
				obj = w.config
			default:
				t.Fatalf("unexpected webhook object %s %s:\n%s", meta.APIVersion, meta.Kind, doc)
			}
			if slices.Contains(w.kinds, meta.Kind) {
				t.Fatalf("two webhook objects of kind %s", meta.Kind)
			}
			w.kinds = append(w.kinds, meta.Kind)
			if err := sigsyaml.UnmarshalStrict([]byte(doc), obj); err != nil {
				t.Fatalf("webhook %s: %v\n%s", meta.Kind, err, doc)
			}
			continue
		}
		switch meta.APIVersion + " " + meta.Kind {
		case "apps/v1 Deployment":
			c.deployment = new(appsv1.Deployment)
			obj = c.deployment
		case "v1 Service":
			c.service = new(corev1.Service)
			obj = c.service
		case "v1 ConfigMap":
			c.configMap = new(corev1.ConfigMap)
			obj = c.configMap
		case "policy/v1 PodDisruptionBudget":
			c.pdb = new(policyv1.PodDisruptionBudget)
			obj = c.pdb
		case "v1 ServiceAccount":
			c.serviceAccount = new(corev1.ServiceAccount)
			obj = c.serviceAccount
		case "monitoring.coreos.com/v1 ServiceMonitor":
			c.serviceMonitor = new(serviceMonitor)
			obj = c.serviceMonitor
		default:
			t.Fatalf("unexpected object %s %s:\n%s", meta.APIVersion, meta.Kind, doc)
		}
		if slices.Contains(c.kinds, meta.Kind) {
			t.Fatalf("two objects of kind %s", meta.Kind)
		}
		c.kinds = append(c.kinds, meta.Kind)
		if err := sigsyaml.UnmarshalStrict([]byte(doc), obj); err != nil {
			t.Fatalf("%s: %v\n%s", meta.Kind, err, doc)
		}
	}
	slices.Sort(c.kinds)
	if c.webhook != nil {
		slices.Sort(c.webhook.kinds)
	}
	return c
}

// isWebhook tells the webhook's objects by their component label.
func isWebhook(doc string) bool {
	var meta metav1.PartialObjectMetadata
	return sigsyaml.Unmarshal([]byte(doc), &meta) == nil && meta.Labels["app.kubernetes.io/component"] == "webhook"
}

// loadChartConfig writes the ConfigMap's entrepot.yaml where the test can
// read it and loads it as the container would: the image's ENTRYPOINT with
// the container's args, $(VAR) expanded, in the container's environment
// (secrets and the downward API filled in with test values). It also
// returns the file as plain YAML, for the variable names it holds.
func loadChartConfig(t *testing.T, d dockerfile, c chart) (*config.Config, map[string]any) {
	t.Helper()
	pod := c.deployment.Spec.Template.Spec
	ctr := pod.Containers[0]
	file, ok := c.configMap.Data["entrepot.yaml"]
	if !ok {
		t.Fatalf("the ConfigMap has no entrepot.yaml")
	}

	// The image reads the file the ConfigMap's volume puts at its path.
	dir, name := filepath.Split(d.configPath())
	mount := volumeMount(ctr, strings.TrimSuffix(dir, "/"))
	if mount == nil {
		t.Fatalf("nothing mounted at %s, where the image reads %s", dir, name)
	}
	vol := volume(pod, mount.Name)
	if vol == nil || vol.ConfigMap == nil || vol.ConfigMap.Name != c.configMap.Name {
		t.Fatalf("%s is not the ConfigMap %s", mount.MountPath, c.configMap.Name)
	}
	if name != "entrepot.yaml" || len(vol.ConfigMap.Items) > 0 {
		t.Fatalf("the image reads %s%s; the ConfigMap holds entrepot.yaml", dir, name)
	}

	env := map[string]string{}
	for _, e := range ctr.Env {
		switch {
		case e.ValueFrom == nil:
			env[e.Name] = kubeExpand(e.Value, env)
		case e.ValueFrom.FieldRef != nil && e.ValueFrom.FieldRef.FieldPath == "status.podIP":
			env[e.Name] = podIP
		case e.ValueFrom.SecretKeyRef != nil:
			env[e.Name] = testSecret(e.ValueFrom.SecretKeyRef.Name, e.ValueFrom.SecretKeyRef.Key).Reveal()
		default:
			t.Fatalf("env %s: a source the test does not know: %+v", e.Name, e.ValueFrom)
		}
	}
	if len(ctr.Command) > 0 {
		t.Fatalf("the container's command %q replaces the image's ENTRYPOINT", ctr.Command)
	}
	var args []string
	for _, a := range ctr.Args {
		args = append(args, kubeExpand(a, env))
	}
	path := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(path, []byte(file), 0o644); err != nil {
		t.Fatal(err)
	}
	cfg := parseServe(t, d, path, args, env)
	var raw map[string]any
	if err := yaml.Unmarshal([]byte(file), &raw); err != nil {
		t.Fatal(err)
	}
	return cfg, raw
}

// testSecret is the value the test gives key of the Secret name: at least
// the 16 bytes a peer secret needs.
func testSecret(name, key string) config.Secret {
	if strings.HasSuffix(key, "url") { // shaped as a Redis URL, which it holds
		return config.Secret("redis://:test-value-of-" + name + "-" + key + "@redis.test:6379/0")
	}
	return config.Secret("test-value-of-" + name + "/" + key)
}

var kubeVar = regexp.MustCompile(`\$\(([A-Za-z_][A-Za-z0-9_]*)\)`)

// kubeExpand expands $(VAR) in an argument as the kubelet does, from env;
// an unknown variable is left as written.
func kubeExpand(s string, env map[string]string) string {
	return kubeVar.ReplaceAllStringFunc(s, func(m string) string {
		if v, ok := env[m[2:len(m)-1]]; ok {
			return v
		}
		return m
	})
}

// checkSelects checks that the labels selected are among labels.
func checkSelects(t *testing.T, what string, selector, labels map[string]string) {
	t.Helper()
	if len(selector) == 0 {
		t.Errorf("%s is empty", what)
	}
	for k, v := range selector {
		if labels[k] != v {
			t.Errorf("%s %s=%s does not select the pods (labels %v)", what, k, v, labels)
		}
	}
}

// containerPort resolves a port by name or number to the container's
// port, failing if the container has no such port.
func containerPort(t *testing.T, ctr corev1.Container, p intstr.IntOrString) int {
	t.Helper()
	for _, cp := range ctr.Ports {
		if p.Type == intstr.String && cp.Name == p.StrVal || p.Type == intstr.Int && cp.ContainerPort == p.IntVal {
			return int(cp.ContainerPort)
		}
	}
	t.Fatalf("the container has no port %s (ports %+v)", p.String(), ctr.Ports)
	return 0
}

func volumeMount(ctr corev1.Container, path string) *corev1.VolumeMount {
	for i, m := range ctr.VolumeMounts {
		if filepath.Clean(m.MountPath) == filepath.Clean(path) {
			return &ctr.VolumeMounts[i]
		}
	}
	return nil
}

func volume(pod corev1.PodSpec, name string) *corev1.Volume {
	for i, v := range pod.Volumes {
		if v.Name == name {
			return &pod.Volumes[i]
		}
	}
	return nil
}

// secretRef is where the container's variable name comes from, if a
// Secret.
func secretRef(ctr corev1.Container, name string) *corev1.SecretKeySelector {
	for _, e := range ctr.Env {
		if e.Name == name && e.ValueFrom != nil {
			return e.ValueFrom.SecretKeyRef
		}
	}
	return nil
}
