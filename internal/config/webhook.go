package config

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"net/url"
	"os"
	"slices"
	"strings"

	"github.com/entrepot/entrepot/internal/oci"
	"github.com/entrepot/entrepot/internal/rewrite"
)

// Webhook is the configuration of `entrepot webhook`: the admission
// webhook that rewrites pods' images to the cache. It reads the webhook
// section of a configuration file, and of the rest only the upstreams
// (their names and URLs: no credential is read) and the log section, so
// that the webhook and the cache may share one file.
type Webhook struct {
	// Listen is the HTTPS address (webhook.listen, --listen). Default
	// ":8443".
	Listen string
	// TLS is its certificate and key (webhook.tls.cert, webhook.tls.key,
	// --tls-cert, --tls-key), re-read when they change; required, as the
	// API server calls webhooks over HTTPS only.
	TLS TLS
	// Cache is the cache's host, port and optional path that images are
	// rewritten to (webhook.cache, --cache), e.g. "cache.example:5000".
	Cache string
	// Namespace is the webhook's own namespace (webhook.namespace,
	// --namespace; default the variable POD_NAMESPACE, else the service
	// account's namespace file, else "entrepot").
	Namespace string
	// ExcludeNamespaces are never rewritten (webhook.exclude.namespaces;
	// default kube-system); the webhook's own namespace always is one.
	ExcludeNamespaces []string
	// ExcludeImages are patterns (oci.CheckPattern) of images left alone
	// (webhook.exclude.images).
	ExcludeImages []string
	// RequireReady admits pods unchanged, with a warning, while the
	// cache's ReadyURL does not answer 200 (webhook.require_ready).
	// Default true.
	RequireReady bool
	// ReadyURL is polled every few seconds (webhook.ready_url). Default
	// https://<the cache's host>/readyz.
	ReadyURL string
	// ReadyCA is a PEM file of the authorities that sign the cache's
	// certificate, for ReadyURL (webhook.ready_ca). Default: the system's.
	ReadyCA string
	// PullSecret is added to the image pull secrets of pods the webhook
	// rewrites, when they are created (webhook.pull_secret).
	PullSecret string
	// Upstreams are the cache's upstreams (upstreams; default the
	// built-in list): only their images are rewritten.
	Upstreams []Upstream
	// Log is how the webhook logs (log).
	Log Log
}

const (
	defaultWebhookListen = ":8443"
	serviceAccountNS     = "/var/run/secrets/kubernetes.io/serviceaccount/namespace"
)

// fileWebhook is the webhook section.
//
//	webhook:
//	  listen: ":8443"
//	  tls: {cert: /etc/webhook/tls.crt, key: /etc/webhook/tls.key}
//	  cache: cache.example:5000      # host[:port][/path] images are rewritten to
//	  namespace: entrepot            # default: POD_NAMESPACE, the service account's
//	  exclude:
//	    namespaces: [kube-system]    # the webhook's own is always excluded
//	    images: [docker.io/library/busybox*]
//	  require_ready: true            # pods unchanged while the cache is not ready
//	  ready_url: https://cache.example:5000/readyz
//	  ready_ca: /etc/webhook/cache-ca.pem
//	  pull_secret: entrepot-pull     # added to rewritten pods
type fileWebhook struct {
	Listen    *string `yaml:"listen"`
	TLS       fileTLS `yaml:"tls"`
	Cache     *string `yaml:"cache"`
	Namespace *string `yaml:"namespace"`
	Exclude   struct {
		Namespaces []string `yaml:"namespaces"`
		Images     []string `yaml:"images"`
	} `yaml:"exclude"`
	RequireReady *bool   `yaml:"require_ready"`
	ReadyURL     *string `yaml:"ready_url"`
	ReadyCA      *string `yaml:"ready_ca"`
	PullSecret   *string `yaml:"pull_secret"`
}

// ParseWebhook reads the arguments of `entrepot webhook` (and of
// `entrepot webhook manifests`): --config FILE (or the file as the one
// argument), and --listen, --cache, --namespace, --tls-cert and --tls-key
// over the file's keys. getenv reads POD_NAMESPACE and ENTREPOT_LOG_LEVEL;
// nil means os.Getenv.
func ParseWebhook(args []string, getenv func(string) string) (*Webhook, error) {
	if getenv == nil {
		getenv = os.Getenv
	}
	var path string
	over := map[string]*string{}
	fs := flag.NewFlagSet("webhook", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	fs.StringVar(&path, "config", "", "read the configuration from the YAML `FILE`")
	for _, name := range []string{"listen", "cache", "namespace", "tls-cert", "tls-key"} {
		fs.Func(name, "", func(s string) error { over[name] = &s; return nil })
	}
	if err := fs.Parse(args); err != nil {
		return nil, err
	}
	if fs.NArg() > 0 {
		if path != "" || fs.NArg() > 1 {
			return nil, fmt.Errorf("unexpected argument %q: one configuration file only", fs.Arg(fs.NArg()-1))
		}
		path = fs.Arg(0)
	}
	def := Defaults()
	w := &Webhook{Listen: defaultWebhookListen, RequireReady: true, Upstreams: def.Upstreams, Log: def.Log}
	var fw fileWebhook
	if path != "" {
		data, err := os.ReadFile(path)
		if err != nil {
			return nil, fmt.Errorf("--config: %w", err)
		}
		var fc fileConfig
		if err := decodeYAML(data, &fc); err != nil {
			return nil, yamlError(path, err)
		}
		if err := fc.applyWebhook(w); err != nil {
			return nil, fmt.Errorf("%s: %w", path, err)
		}
		fw = fc.Webhook
	}
	for key, dst := range map[string]**string{"listen": &fw.Listen, "cache": &fw.Cache, "namespace": &fw.Namespace, "tls-cert": &fw.TLS.Cert, "tls-key": &fw.TLS.Key} {
		if v, ok := over[key]; ok {
			*dst = v
		}
	}
	if v := getenv("ENTREPOT_LOG_LEVEL"); v != "" {
		level, err := parseLevel(v)
		if err != nil {
			return nil, fmt.Errorf("ENTREPOT_LOG_LEVEL: %w", err)
		}
		w.Log.Level = level
	}
	if err := fw.apply(w, getenv); err != nil {
		return nil, err
	}
	return w, nil
}

// applyWebhook sets what the webhook reads of the rest of the file: the
// upstreams' names and URLs, and the log section.
func (fc *fileConfig) applyWebhook(w *Webhook) error {
	if fc.Upstreams != nil {
		if len(fc.Upstreams) == 0 {
			return errors.New("upstreams: must list at least one upstream")
		}
		w.Upstreams = nil
		for i, fu := range fc.Upstreams {
			u, err := fu.upstream(fmt.Sprintf("upstreams[%d]", i), nil, true)
			if err != nil {
				return err
			}
			w.Upstreams = append(w.Upstreams, u)
		}
	}
	return fc.Log.apply(&w.Log)
}

// apply validates the webhook section (with the flags applied) and sets
// it on w.
func (fw *fileWebhook) apply(w *Webhook, getenv func(string) string) error {
	if fw.Listen != nil {
		if err := checkListen(*fw.Listen); err != nil {
			return fmt.Errorf("webhook.listen: %w", err)
		}
		w.Listen = *fw.Listen
	}
	if fw.Cache == nil || *fw.Cache == "" {
		return errors.New("webhook.cache (or --cache): required: the cache's host, port and optional path that images are rewritten to, e.g. cache.example:5000")
	}
	w.Cache = strings.TrimSuffix(*fw.Cache, "/")
	if err := rewrite.CheckCache(w.Cache); err != nil {
		return fmt.Errorf("webhook.cache: %w", err)
	}
	fw.TLS.apply(&w.TLS)
	if w.TLS.Cert == "" || w.TLS.Key == "" {
		return errors.New("webhook.tls.cert and webhook.tls.key (or --tls-cert and --tls-key): required: the API server calls webhooks over HTTPS only")
	}
	if err := checkTLS(w.TLS, &flags{}); err != nil {
		return fmt.Errorf("webhook.%w", err)
	}
	w.Namespace = webhookNamespace(fw.Namespace, getenv)
	w.ExcludeNamespaces = []string{"kube-system"}
	if fw.Exclude.Namespaces != nil {
		w.ExcludeNamespaces = fw.Exclude.Namespaces
	}
	if !slices.Contains(w.ExcludeNamespaces, w.Namespace) {
		w.ExcludeNamespaces = append(w.ExcludeNamespaces, w.Namespace)
	}
	for i, p := range fw.Exclude.Images {
		if err := oci.CheckPattern(p); err != nil {
			return fmt.Errorf("webhook.exclude.images[%d]: %w", i, err)
		}
	}
	w.ExcludeImages = fw.Exclude.Images
	if fw.RequireReady != nil {
		w.RequireReady = *fw.RequireReady
	}
	host, _, _ := strings.Cut(w.Cache, "/")
	w.ReadyURL = "https://" + host + "/readyz"
	if fw.ReadyURL != nil {
		u, err := url.Parse(*fw.ReadyURL)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return fmt.Errorf("webhook.ready_url: %q is not an http or https URL", *fw.ReadyURL)
		}
		w.ReadyURL = *fw.ReadyURL
	}
	if fw.ReadyCA != nil {
		if _, err := LoadCertPool(*fw.ReadyCA); err != nil {
			return fmt.Errorf("webhook.ready_ca: %w", err)
		}
		w.ReadyCA = *fw.ReadyCA
	}
	if fw.PullSecret != nil {
		w.PullSecret = *fw.PullSecret
	}
	return nil
}

// webhookNamespace is the webhook's own namespace: as configured, else
// from the downward API's POD_NAMESPACE, else the service account's.
func webhookNamespace(configured *string, getenv func(string) string) string {
	if configured != nil && *configured != "" {
		return *configured
	}
	if ns := getenv("POD_NAMESPACE"); ns != "" {
		return ns
	}
	if b, err := os.ReadFile(serviceAccountNS); err == nil && strings.TrimSpace(string(b)) != "" {
		return strings.TrimSpace(string(b))
	}
	return "entrepot"
}

// RewriteUpstreams are the upstreams as package rewrite takes them.
func RewriteUpstreams(ups []Upstream) []rewrite.Upstream {
	out := make([]rewrite.Upstream, len(ups))
	for i, u := range ups {
		out[i] = rewrite.Upstream{Name: u.Name, Host: u.URL.Host}
	}
	return out
}

// ReadUpstreams reads the upstreams of the configuration file at path
// (their names and URLs; no credential is read), or the built-in list when
// the file has none, for `entrepot rewrite`.
func ReadUpstreams(path string) ([]Upstream, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("--config: %w", err)
	}
	var fc fileConfig
	if err := decodeYAML(data, &fc); err != nil {
		return nil, yamlError(path, err)
	}
	w := &Webhook{Upstreams: Defaults().Upstreams}
	if err := fc.applyWebhook(w); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return w.Upstreams, nil
}
