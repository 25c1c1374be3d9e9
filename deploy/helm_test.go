package deploy_test

import (
	"fmt"
	"maps"
	"net"
	"slices"
	"testing"
	"time"

	"github.com/entrepot/entrepot/internal/config"
	"github.com/entrepot/entrepot/internal/testenv"
	corev1 "k8s.io/api/core/v1"
)

const chartDir = "helm/entrepot"

// chartCase is a set of values and what the chart must render for them.
type chartCase struct {
	name   string
	values string // a values file's YAML; "" renders the defaults
	want   chartWant
}

// chartWant is what the rendered objects must say.
type chartWant struct {
	kinds    []string
	replicas int32
	// upstreams are the names of the configured upstreams.
	upstreams []string
	maxSize   int64
	s3        config.S3 // AccessKey and SecretKey: the test values of their variables
	s3Secret  string    // the Secret the S3 keys come from; "": the AWS chain
	redis     string
	redirect  config.Redirect
	// peerSecret and adminSecret are where those come from; a zero
	// adminSecret: no admin token.
	peerSecret, adminSecret secretKey
	prefetch                int
	shutdownGrace           time.Duration
}

// secretKey is a key of a Secret.
type secretKey struct{ name, key string }

// podIP is the address the test gives the pod: its status.podIP.
const podIP = "10.1.2.3"

// TestHelmChart renders the chart with its defaults and with values that
// turn everything on, decodes every object strictly into its Kubernetes
// type, and checks that they fit together: the Service and the probes
// reach the container's port, the ConfigMap's entrepot.yaml loads with the
// real configuration loader in the environment the Deployment gives it and
// says what the values say, every secret variable it names is set from a
// Secret, nothing runs as root, and the pod's grace outlasts Entrepot's.
func TestHelmChart(t *testing.T) {
	helm := testenv.Binary(t, "helm", "ENTREPOT_HELM", "go install helm.sh/helm/v4/cmd/helm@v4.3.2")
	d := readDockerfile(t)
	for _, tc := range []chartCase{
		{
			name: "defaults",
			want: chartWant{
				kinds:    []string{"ConfigMap", "Deployment", "PodDisruptionBudget", "Service", "ServiceAccount"},
				replicas: 3,
				upstreams: []string{"docker.io", "ghcr.io", "quay.io", "registry.k8s.io", "gcr.io",
					"public.ecr.aws", "mcr.microsoft.com"},
				s3: config.S3{Region: "us-east-1", Bucket: "entrepot",
					AccessKey: testSecret("entrepot-s3", "access-key"), SecretKey: testSecret("entrepot-s3", "secret-key")},
				s3Secret:      "entrepot-s3",
				redis:         "redis://entrepot-redis:6379/0",
				redirect:      config.Redirect{Expiry: 10 * time.Minute},
				peerSecret:    secretKey{"entrepot-peer", "peer-secret"},
				prefetch:      4,
				shutdownGrace: 30 * time.Second,
			},
		},
		{
			name: "everything",
			values: `
replicas: 5
upstreams:
  - name: docker.io
    url: https://registry-1.docker.io
    username: alice
    password_env: HUB_TOKEN
  - name: registry.example.com
    url: https://registry.example.com
    ttl: 5m
env:
  - name: HUB_TOKEN
    valueFrom:
      secretKeyRef: {name: hub, key: token}
storage:
  maxSize: 200GiB
s3:
  endpoint: http://minio.storage:9000
  region: eu-west-3
  bucket: cache
  prefix: fleet
  pathStyle: true
  existingSecret: minio-keys
  accessKeyKey: user
  secretKeyKey: password
redis:
  url: redis://redis.infra:6379/2
cluster:
  existingSecret: peers
  secretKey: shared
redirect:
  enabled: true
  expiry: 20m
  clients: [10.0.0.0/8]
  direct: [10.20.0.0/16]
admin:
  existingSecret: admin-token
shutdownGraceSeconds: 60
preStopSleepSeconds: 8
config:
  prefetch: 8
serviceMonitor:
  enabled: true
podDisruptionBudget:
  enabled: false
serviceAccount:
  create: false
  name: cache
`,
			want: chartWant{
				kinds:     []string{"ConfigMap", "Deployment", "Service", "ServiceMonitor"},
				replicas:  5,
				upstreams: []string{"docker.io", "registry.example.com"},
				maxSize:   200 << 30,
				s3: config.S3{Endpoint: "http://minio.storage:9000", Region: "eu-west-3", Bucket: "cache", Prefix: "fleet/", PathStyle: true,
					AccessKey: testSecret("minio-keys", "user"), SecretKey: testSecret("minio-keys", "password")},
				s3Secret: "minio-keys",
				redis:    "redis://redis.infra:6379/2",
				redirect: config.Redirect{Enabled: true, Expiry: 20 * time.Minute,
					Clients: prefixes("10.0.0.0/8"), Direct: prefixes("10.20.0.0/16")},
				peerSecret:    secretKey{"peers", "shared"},
				adminSecret:   secretKey{"admin-token", "token"},
				prefetch:      8,
				shutdownGrace: 60 * time.Second,
			},
		},
		{
			name: "alone on the AWS chain",
			values: `
replicas: 1
redis:
  url: ""
s3:
  existingSecret: ""
`,
			want: chartWant{
				kinds:    []string{"ConfigMap", "Deployment", "PodDisruptionBudget", "Service", "ServiceAccount"},
				replicas: 1,
				upstreams: []string{"docker.io", "ghcr.io", "quay.io", "registry.k8s.io", "gcr.io",
					"public.ecr.aws", "mcr.microsoft.com"},
				s3:            config.S3{Region: "us-east-1", Bucket: "entrepot"},
				redirect:      config.Redirect{Expiry: 10 * time.Minute},
				prefetch:      4,
				shutdownGrace: 30 * time.Second,
			},
		},
		{
			name: "the Redis URL from a Secret",
			values: `
redis:
  url: ""
  existingSecret: redis-creds
  urlKey: url
`,
			want: chartWant{
				kinds:    []string{"ConfigMap", "Deployment", "PodDisruptionBudget", "Service", "ServiceAccount"},
				replicas: 3,
				upstreams: []string{"docker.io", "ghcr.io", "quay.io", "registry.k8s.io", "gcr.io",
					"public.ecr.aws", "mcr.microsoft.com"},
				s3: config.S3{Region: "us-east-1", Bucket: "entrepot",
					AccessKey: testSecret("entrepot-s3", "access-key"), SecretKey: testSecret("entrepot-s3", "secret-key")},
				s3Secret:      "entrepot-s3",
				redis:         testSecret("redis-creds", "url").Reveal(),
				redirect:      config.Redirect{Expiry: 10 * time.Minute},
				peerSecret:    secretKey{"entrepot-peer", "peer-secret"},
				prefetch:      4,
				shutdownGrace: 30 * time.Second,
			},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			objs := renderChart(t, helm, tc.values)
			checkChart(t, d, objs, tc.want)
		})
	}
}

// checkChart checks the rendered objects c against want.
func checkChart(t *testing.T, d dockerfile, c chart, want chartWant) {
	if !slices.Equal(c.kinds, want.kinds) {
		t.Fatalf("kinds %q, want %q", c.kinds, want.kinds)
	}
	dep := c.deployment
	pod := dep.Spec.Template.Spec
	if dep.Spec.Replicas == nil || *dep.Spec.Replicas != want.replicas {
		t.Errorf("replicas %v, want %d", dep.Spec.Replicas, want.replicas)
	}
	if len(pod.Containers) != 1 {
		t.Fatalf("%d containers, want 1", len(pod.Containers))
	}
	ctr := pod.Containers[0]

	// The objects find the pods.
	podLabels := dep.Spec.Template.Labels
	checkSelects(t, "the Deployment's selector", dep.Spec.Selector.MatchLabels, podLabels)
	checkSelects(t, "the Service's selector", c.service.Spec.Selector, podLabels)
	if c.pdb != nil {
		checkSelects(t, "the PodDisruptionBudget's selector", c.pdb.Spec.Selector.MatchLabels, podLabels)
	}
	if name := pod.ServiceAccountName; c.serviceAccount != nil && name != c.serviceAccount.Name {
		t.Errorf("the pod runs as service account %q, the chart creates %q", name, c.serviceAccount.Name)
	}

	// entrepot.yaml loads, in the pod's environment, as the values say.
	cfg, raw := loadChartConfig(t, d, c)
	checkChartConfig(t, cfg, want)

	// The Service and the probes reach the port entrepot.yaml listens on.
	listenPort := port(t, "listen", cfg.Listen)
	svcPort := c.service.Spec.Ports[0]
	if svcPort.Name != "http" {
		t.Fatalf("the Service's first port is %q, want http", svcPort.Name)
	}
	if got := containerPort(t, ctr, svcPort.TargetPort); got != listenPort {
		t.Errorf("the Service's targetPort %s is the container's port %d; entrepot.yaml listens on %d", svcPort.TargetPort.String(), got, listenPort)
	}
	for _, p := range []struct {
		name  string
		probe *corev1.Probe
		path  string
	}{{"liveness", ctr.LivenessProbe, "/healthz"}, {"readiness", ctr.ReadinessProbe, "/readyz"}} {
		if p.probe == nil || p.probe.HTTPGet == nil {
			t.Errorf("no %s probe over HTTP", p.name)
			continue
		}
		if p.probe.HTTPGet.Path != p.path {
			t.Errorf("%s probe: path %q, want %q", p.name, p.probe.HTTPGet.Path, p.path)
		}
		if got := containerPort(t, ctr, p.probe.HTTPGet.Port); got != listenPort {
			t.Errorf("%s probe: port %d; entrepot.yaml listens on %d", p.name, got, listenPort)
		}
	}
	if want.adminSecret.name != "" {
		adminPort := port(t, "admin.listen", cfg.Admin.Listen)
		found := false
		for _, sp := range c.service.Spec.Ports {
			found = found || containerPort(t, ctr, sp.TargetPort) == adminPort
		}
		if !found {
			t.Errorf("no Service port reaches the admin API's port %d", adminPort)
		}
	}
	if sm := c.serviceMonitor; sm != nil {
		checkSelects(t, "the ServiceMonitor's selector", sm.Spec.Selector.MatchLabels, c.service.Labels)
		if len(sm.Spec.Endpoints) != 1 || sm.Spec.Endpoints[0].Port != svcPort.Name || sm.Spec.Endpoints[0].Path != "/metrics" {
			t.Errorf("ServiceMonitor endpoints %+v, want /metrics on the Service's port %s", sm.Spec.Endpoints, svcPort.Name)
		}
		if !cfg.Metrics {
			t.Errorf("a ServiceMonitor scrapes the registry API's port, whose /metrics entrepot.yaml turns off")
		}
	}

	// Every variable entrepot.yaml reads a secret from comes from a Secret.
	secrets := map[string]string{} // variable -> the Secret it must come from
	if want.s3Secret != "" {
		secrets[lookup(t, raw, "storage", "s3", "access_key_env")] = want.s3Secret
		secrets[lookup(t, raw, "storage", "s3", "secret_key_env")] = want.s3Secret
	} else if has(raw, "storage", "s3", "access_key_env") {
		t.Errorf("storage.s3.access_key_env set without s3.existingSecret: the AWS chain is not used")
	}
	if want.peerSecret.name != "" {
		secrets[lookup(t, raw, "cluster", "secret_env")] = want.peerSecret.name
	}
	if want.adminSecret.name != "" {
		secrets[lookup(t, raw, "admin", "token_env")] = want.adminSecret.name
	}
	ups, _ := raw["upstreams"].([]any)
	for _, u := range ups {
		if env, ok := u.(map[string]any)["password_env"].(string); ok {
			secrets[env] = "" // any Secret
		}
	}
	for _, name := range slices.Sorted(maps.Keys(secrets)) {
		ref := secretRef(ctr, name)
		if ref == nil {
			t.Errorf("entrepot.yaml reads %s, which the container does not set from a Secret", name)
		} else if secrets[name] != "" && ref.Name != secrets[name] {
			t.Errorf("%s comes from the Secret %q, want %q", name, ref.Name, secrets[name])
		}
	}

	checkPodSecurity(t, pod, cfg)
	var preStop int64
	if h := ctr.Lifecycle; h != nil && h.PreStop != nil && h.PreStop.Sleep != nil {
		preStop = h.PreStop.Sleep.Seconds
	}
	grace := time.Duration(preStop)*time.Second + cfg.ShutdownGrace
	if p := pod.TerminationGracePeriodSeconds; p == nil || time.Duration(*p)*time.Second <= grace {
		t.Errorf("terminationGracePeriodSeconds %s, want more than the preStop sleep and shutdown_grace (%v)", fmtInt(p), grace)
	}
}

// checkChartConfig checks the loaded configuration against want.
func checkChartConfig(t *testing.T, cfg *config.Config, want chartWant) {
	var names []string
	for _, u := range cfg.Upstreams {
		names = append(names, u.Name)
	}
	if !slices.Equal(names, want.upstreams) {
		t.Errorf("upstreams %q, want %q", names, want.upstreams)
	}
	if cfg.Storage.MaxSize != want.maxSize {
		t.Errorf("storage.max_size %d, want %d", cfg.Storage.MaxSize, want.maxSize)
	}
	if cfg.Storage.S3 == nil {
		t.Fatalf("no storage.s3")
	}
	if got := *cfg.Storage.S3; got != want.s3 {
		t.Errorf("storage.s3 %s, want %s", fmtS3(got), fmtS3(want.s3))
	}
	if got := cfg.Cluster.Redis.Reveal(); got != want.redis {
		t.Errorf("cluster.redis %q, want %q", got, want.redis)
	}
	if want.redis != "" {
		if want := net.JoinHostPort(podIP, fmt.Sprint(port(t, "listen", cfg.Listen))); cfg.Cluster.Advertise != want {
			t.Errorf("cluster.advertise %q, want the pod's IP and port, %q", cfg.Cluster.Advertise, want)
		}
		if got := cfg.Cluster.Secret; got != testSecret(want.peerSecret.name, want.peerSecret.key) {
			t.Errorf("the peers' secret %q, not the Secret %s's key %s", got.Reveal(), want.peerSecret.name, want.peerSecret.key)
		}
	}
	r := cfg.Redirect
	if r.Enabled != want.redirect.Enabled || r.Expiry != want.redirect.Expiry ||
		!slices.Equal(r.Clients, want.redirect.Clients) || !slices.Equal(r.Direct, want.redirect.Direct) {
		t.Errorf("redirect %+v, want %+v", r, want.redirect)
	}
	if cfg.Prefetch != want.prefetch {
		t.Errorf("prefetch %d, want %d (values' config)", cfg.Prefetch, want.prefetch)
	}
	if a := want.adminSecret; a.name != "" && cfg.Admin.Token != testSecret(a.name, a.key) {
		t.Errorf("the admin token %q, not the Secret %s's key %s", cfg.Admin.Token.Reveal(), a.name, a.key)
	}
	if cfg.ShutdownGrace != want.shutdownGrace {
		t.Errorf("shutdown_grace %v, want %v", cfg.ShutdownGrace, want.shutdownGrace)
	}
}

// checkPodSecurity checks that nothing in the pod runs as root, that the
// root filesystem is read-only, and that the data directory is a volume.
func checkPodSecurity(t *testing.T, pod corev1.PodSpec, cfg *config.Config) {
	psc := pod.SecurityContext
	if psc == nil || psc.RunAsNonRoot == nil || !*psc.RunAsNonRoot {
		t.Errorf("the pod does not set runAsNonRoot")
	}
	if psc != nil && psc.RunAsUser != nil && *psc.RunAsUser == 0 {
		t.Errorf("the pod runs as uid 0")
	}
	for _, ctr := range append(slices.Clone(pod.InitContainers), pod.Containers...) {
		sc := ctr.SecurityContext
		if sc == nil {
			t.Errorf("container %s: no securityContext", ctr.Name)
			continue
		}
		if sc.RunAsUser != nil && *sc.RunAsUser == 0 || sc.RunAsNonRoot != nil && !*sc.RunAsNonRoot {
			t.Errorf("container %s runs as root", ctr.Name)
		}
		if sc.AllowPrivilegeEscalation == nil || *sc.AllowPrivilegeEscalation {
			t.Errorf("container %s may escalate its privileges", ctr.Name)
		}
		if sc.ReadOnlyRootFilesystem == nil || !*sc.ReadOnlyRootFilesystem {
			t.Errorf("container %s: root filesystem writable", ctr.Name)
		}
		if sc.Capabilities == nil || !slices.Contains(sc.Capabilities.Drop, "ALL") {
			t.Errorf("container %s keeps its capabilities", ctr.Name)
		}
	}
	m := volumeMount(pod.Containers[0], cfg.Data)
	if m == nil {
		t.Fatalf("the data directory %s is on the read-only root filesystem", cfg.Data)
	}
	if v := volume(pod, m.Name); v == nil || v.EmptyDir == nil || m.ReadOnly {
		t.Errorf("the data directory %s is not a writable emptyDir", cfg.Data)
	}
}

// fmtS3 shows a bucket's configuration, keys included: the test's are
// not secret.
func fmtS3(s config.S3) string {
	k, sk := s.AccessKey.Reveal(), s.SecretKey.Reveal()
	s.AccessKey, s.SecretKey = "", ""
	return fmt.Sprintf("%+v (keys %q, %q)", s, k, sk)
}

func fmtInt(p *int64) string {
	if p == nil {
		return "unset"
	}
	return fmt.Sprint(*p)
}
