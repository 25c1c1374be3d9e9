package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"

	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"sigs.k8s.io/yaml"

	"github.com/entrepot/entrepot/internal/config"
	"github.com/entrepot/entrepot/internal/webhook"
)

// The webhook's objects' names, and where its pod mounts its files.
const (
	webhookName      = "entrepot-webhook"
	webhookTLSSecret = "entrepot-webhook-tls"
	webhookConfigDir = "/etc/entrepot-webhook/config"
	webhookTLSDir    = "/etc/entrepot-webhook/tls"
	webhookPort      = 8443
)

// runWebhookManifests is `entrepot webhook manifests`: the webhook's
// ConfigMap, Deployment, Service and MutatingWebhookConfiguration, as one
// YAML stream for kubectl apply. The TLS Secret is the operator's (its key
// is never printed); the CA bundle is the --ca file, else the certificate
// chain of webhook.tls.cert.
func runWebhookManifests(args []string, stdout, stderr io.Writer) int {
	image, args := cutFlag(args, "image")
	ca, args := cutFlag(args, "ca")
	cfg, err := config.ParseWebhook(args, os.Getenv)
	if errors.Is(err, flag.ErrHelp) {
		fmt.Fprintln(stdout, webhookUsage)
		return 0
	}
	if err != nil {
		fmt.Fprintln(stderr, "entrepot webhook manifests: "+err.Error())
		return 2
	}
	if image == "" {
		image = "ghcr.io/entrepot/entrepot:" + strings.TrimPrefix(buildVersion(), "v")
	}
	if ca == "" {
		ca = cfg.TLS.Cert
	}
	bundle, err := os.ReadFile(ca)
	if err == nil {
		_, err = config.LoadCertPool(ca)
	}
	if err != nil {
		fmt.Fprintln(stderr, "entrepot webhook manifests: the CA bundle: "+err.Error())
		return 2
	}
	out, err := webhookManifests(cfg, image, bundle)
	if err != nil {
		fmt.Fprintln(stderr, "entrepot webhook manifests: "+err.Error())
		return 1
	}
	_, _ = stdout.Write(out)
	return 0
}

// cutFlag removes --name VALUE (or -name, or =VALUE) from args.
func cutFlag(args []string, name string) (string, []string) {
	var value string
	var rest []string
	for i := 0; i < len(args); i++ {
		a := args[i]
		bare := strings.TrimLeft(a, "-")
		switch {
		case (a == "--"+name || a == "-"+name) && i+1 < len(args):
			value = args[i+1]
			i++
		case strings.HasPrefix(a, "-") && strings.HasPrefix(bare, name+"="):
			value = strings.TrimPrefix(bare, name+"=")
		default:
			rest = append(rest, a)
		}
	}
	return value, rest
}

// webhookFile is the configuration the webhook's pod reads: the upstreams
// and the webhook section, with the pod's paths.
type webhookFile struct {
	Upstreams []webhookUpstream `json:"upstreams"`
	Webhook   webhookSection    `json:"webhook"`
}

type webhookUpstream struct {
	Name string `json:"name"`
	URL  string `json:"url"`
}

type webhookSection struct {
	Listen string `json:"listen"`
	TLS    struct {
		Cert string `json:"cert"`
		Key  string `json:"key"`
	} `json:"tls"`
	Cache   string `json:"cache"`
	Exclude struct {
		Namespaces []string `json:"namespaces"`
		Images     []string `json:"images,omitempty"`
	} `json:"exclude"`
	RequireReady bool   `json:"require_ready"`
	ReadyURL     string `json:"ready_url"`
	ReadyCA      string `json:"ready_ca,omitempty"`
	PullSecret   string `json:"pull_secret,omitempty"`
}

func webhookManifests(cfg *config.Webhook, image string, caBundle []byte) ([]byte, error) {
	ns := cfg.Namespace
	labels := map[string]string{"app.kubernetes.io/name": webhookName, "app.kubernetes.io/part-of": "entrepot"}
	meta := func(name string) metav1.ObjectMeta {
		return metav1.ObjectMeta{Name: name, Namespace: ns, Labels: labels}
	}

	var file webhookFile
	for _, u := range cfg.Upstreams {
		file.Upstreams = append(file.Upstreams, webhookUpstream{Name: u.Name, URL: u.URL.String()})
	}
	w := &file.Webhook
	w.Listen = fmt.Sprintf(":%d", webhookPort)
	w.TLS.Cert, w.TLS.Key = webhookTLSDir+"/tls.crt", webhookTLSDir+"/tls.key"
	w.Cache, w.RequireReady, w.ReadyURL, w.PullSecret = cfg.Cache, cfg.RequireReady, cfg.ReadyURL, cfg.PullSecret
	w.Exclude.Namespaces, w.Exclude.Images = cfg.ExcludeNamespaces, cfg.ExcludeImages
	data := map[string]string{}
	if cfg.ReadyCA != "" {
		pem, err := os.ReadFile(cfg.ReadyCA)
		if err != nil {
			return nil, fmt.Errorf("webhook.ready_ca: %w", err)
		}
		data["cache-ca.pem"] = string(pem)
		w.ReadyCA = webhookConfigDir + "/cache-ca.pem"
	}
	conf, err := yaml.Marshal(file)
	if err != nil {
		return nil, err
	}
	data["webhook.yaml"] = string(conf)
	cm := &corev1.ConfigMap{
		TypeMeta:   metav1.TypeMeta{APIVersion: "v1", Kind: "ConfigMap"},
		ObjectMeta: meta(webhookName),
		Data:       data,
	}

	replicas := int32(2)
	podLabels := map[string]string{}
	for k, v := range labels {
		podLabels[k] = v
	}
	podLabels[webhook.OptOutLabel] = "false" // never rewrite the webhook's own pods
	yes, no, uid := true, false, int64(65532)
	probe := &corev1.Probe{ProbeHandler: corev1.ProbeHandler{HTTPGet: &corev1.HTTPGetAction{
		Path: "/healthz", Port: intstr.FromString("https"), Scheme: corev1.URISchemeHTTPS,
	}}, PeriodSeconds: 10}
	dep := &appsv1.Deployment{
		TypeMeta:   metav1.TypeMeta{APIVersion: "apps/v1", Kind: "Deployment"},
		ObjectMeta: meta(webhookName),
		Spec: appsv1.DeploymentSpec{
			Replicas: &replicas,
			Selector: &metav1.LabelSelector{MatchLabels: labels},
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: podLabels},
				Spec: corev1.PodSpec{
					Containers: []corev1.Container{{
						Name:  "webhook",
						Image: image,
						Args:  []string{"webhook", "--config", webhookConfigDir + "/webhook.yaml"},
						Env: []corev1.EnvVar{{Name: "POD_NAMESPACE", ValueFrom: &corev1.EnvVarSource{
							FieldRef: &corev1.ObjectFieldSelector{FieldPath: "metadata.namespace"},
						}}},
						Ports:          []corev1.ContainerPort{{Name: "https", ContainerPort: webhookPort}},
						ReadinessProbe: probe,
						LivenessProbe:  probe,
						VolumeMounts: []corev1.VolumeMount{
							{Name: "config", MountPath: webhookConfigDir, ReadOnly: true},
							{Name: "tls", MountPath: webhookTLSDir, ReadOnly: true},
						},
						SecurityContext: &corev1.SecurityContext{
							RunAsNonRoot: &yes, RunAsUser: &uid, ReadOnlyRootFilesystem: &yes, AllowPrivilegeEscalation: &no,
							Capabilities: &corev1.Capabilities{Drop: []corev1.Capability{"ALL"}},
						},
					}},
					Volumes: []corev1.Volume{
						{Name: "config", VolumeSource: corev1.VolumeSource{ConfigMap: &corev1.ConfigMapVolumeSource{
							LocalObjectReference: corev1.LocalObjectReference{Name: webhookName},
						}}},
						{Name: "tls", VolumeSource: corev1.VolumeSource{Secret: &corev1.SecretVolumeSource{SecretName: webhookTLSSecret}}},
					},
				},
			},
		},
	}
	svc := &corev1.Service{
		TypeMeta:   metav1.TypeMeta{APIVersion: "v1", Kind: "Service"},
		ObjectMeta: meta(webhookName),
		Spec: corev1.ServiceSpec{
			Selector: labels,
			Ports:    []corev1.ServicePort{{Name: "https", Port: 443, TargetPort: intstr.FromString("https")}},
		},
	}
	mwc := mutatingWebhookConfiguration(cfg, caBundle)
	var out strings.Builder
	out.WriteString("# entrepot webhook manifests: kubectl apply -f - (namespace " + ns + ").\n" +
		"# First make the namespace and the TLS Secret of the webhook's certificate, valid for\n" +
		"# " + webhookName + "." + ns + ".svc:\n" +
		"#   kubectl create secret tls " + webhookTLSSecret + " -n " + ns + " --cert=tls.crt --key=tls.key\n")
	for _, obj := range []any{cm, dep, svc, mwc} {
		b, err := yaml.Marshal(obj)
		if err != nil {
			return nil, err
		}
		out.WriteString("---\n")
		out.Write(b)
	}
	return []byte(out.String()), nil
}

// mutatingWebhookConfiguration registers the webhook for pods and their
// ephemeral containers. It fails open (Ignore), has no side effects,
// answers within 5 s, runs again after later webhooks (IfNeeded: sidecars
// they inject are rewritten too), and skips the excluded namespaces and
// opted-out namespaces and pods before they reach it.
func mutatingWebhookConfiguration(cfg *config.Webhook, caBundle []byte) *admissionregistrationv1.MutatingWebhookConfiguration {
	ignore := admissionregistrationv1.Ignore
	none := admissionregistrationv1.SideEffectClassNone
	ifNeeded := admissionregistrationv1.IfNeededReinvocationPolicy
	equivalent := admissionregistrationv1.Equivalent
	namespaced := admissionregistrationv1.NamespacedScope
	timeout := int32(5)
	path := "/mutate"
	port := int32(443)
	notOptedOut := metav1.LabelSelectorRequirement{Key: webhook.OptOutLabel, Operator: metav1.LabelSelectorOpNotIn, Values: []string{"false"}}
	return &admissionregistrationv1.MutatingWebhookConfiguration{
		TypeMeta:   metav1.TypeMeta{APIVersion: "admissionregistration.k8s.io/v1", Kind: "MutatingWebhookConfiguration"},
		ObjectMeta: metav1.ObjectMeta{Name: webhookName, Labels: map[string]string{"app.kubernetes.io/name": webhookName, "app.kubernetes.io/part-of": "entrepot"}},
		Webhooks: []admissionregistrationv1.MutatingWebhook{{
			Name: "images.entrepot.io",
			ClientConfig: admissionregistrationv1.WebhookClientConfig{
				Service:  &admissionregistrationv1.ServiceReference{Namespace: cfg.Namespace, Name: webhookName, Path: &path, Port: &port},
				CABundle: caBundle,
			},
			Rules: []admissionregistrationv1.RuleWithOperations{{
				Operations: []admissionregistrationv1.OperationType{admissionregistrationv1.Create, admissionregistrationv1.Update},
				Rule: admissionregistrationv1.Rule{
					APIGroups: []string{""}, APIVersions: []string{"v1"},
					Resources: []string{"pods", "pods/ephemeralcontainers"}, Scope: &namespaced,
				},
			}},
			FailurePolicy:      &ignore,
			MatchPolicy:        &equivalent,
			SideEffects:        &none,
			TimeoutSeconds:     &timeout,
			ReinvocationPolicy: &ifNeeded,
			NamespaceSelector: &metav1.LabelSelector{MatchExpressions: []metav1.LabelSelectorRequirement{
				{Key: "kubernetes.io/metadata.name", Operator: metav1.LabelSelectorOpNotIn, Values: cfg.ExcludeNamespaces},
				notOptedOut,
			}},
			ObjectSelector:          &metav1.LabelSelector{MatchExpressions: []metav1.LabelSelectorRequirement{notOptedOut}},
			AdmissionReviewVersions: []string{"v1"},
		}},
	}
}
