package config

import (
	"fmt"
	"net"
	"net/netip"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// S3 is an S3-compatible bucket that holds the content and records in
// place of the data directory, which then holds only fills in progress
// (storage.s3).
type S3 struct {
	// Endpoint is the server's URL (storage.s3.endpoint); empty: AWS's
	// for Region.
	Endpoint string
	// Region is the bucket's region (storage.s3.region).
	Region string
	// Bucket is the bucket's name (storage.s3.bucket), required.
	Bucket string
	// Prefix is prepended to every key (storage.s3.prefix).
	Prefix string
	// PathStyle addresses the bucket in the path, not the host name
	// (storage.s3.path_style): MinIO, Ceph RGW and most servers but AWS's.
	PathStyle bool
	// AccessKey and SecretKey are read from the variables
	// storage.s3.access_key_env and secret_key_env; empty: the usual AWS
	// chain (AWS_ACCESS_KEY_ID, ~/.aws/credentials, the instance's role).
	AccessKey, SecretKey Secret
}

// Cluster makes replicas on one bucket act as one cache (the cluster
// section).
type Cluster struct {
	// Redis is the URL of the Redis they coordinate through
	// (cluster.redis: redis://host:6379/0, or from the variable
	// cluster.redis_env when it holds a password); empty: no cluster.
	Redis Secret
	// Advertise is the address other replicas reach this one at
	// (cluster.advertise: host:port, or a URL).
	Advertise string
	// Secret authenticates the replicas' requests to each other, read
	// from the variable cluster.secret_env.
	Secret Secret
}

// Enabled tells whether the replica is part of a cluster.
func (c Cluster) Enabled() bool { return c.Redis != "" }

// Redirect answers GETs of stored blobs with a 307 to a presigned URL of
// the object store, so that bulk bytes bypass the replicas (the redirect
// section).
type Redirect struct {
	// Enabled turns redirects on (redirect.enabled); they need
	// storage.s3.
	Enabled bool
	// Expiry is how long a presigned URL is valid (redirect.expiry).
	// Default 10m.
	Expiry time.Duration
	// Clients are the networks redirected (redirect.clients); empty:
	// every client.
	Clients []netip.Prefix
	// Direct are networks always served by the replica, even within
	// Clients (redirect.direct): a region far from the bucket.
	Direct []netip.Prefix
}

// Redirects tells whether a client at addr is redirected.
func (r Redirect) Redirects(addr netip.Addr) bool {
	if !r.Enabled {
		return false
	}
	addr = addr.Unmap()
	for _, p := range r.Direct {
		if p.Contains(addr) {
			return false
		}
	}
	if len(r.Clients) == 0 {
		return true
	}
	for _, p := range r.Clients {
		if p.Contains(addr) {
			return true
		}
	}
	return false
}

// fileS3 is the storage.s3 section.
type fileS3 struct {
	Endpoint     string `yaml:"endpoint"`
	Region       string `yaml:"region"`
	Bucket       string `yaml:"bucket"`
	Prefix       string `yaml:"prefix"`
	PathStyle    bool   `yaml:"path_style"`
	AccessKeyEnv string `yaml:"access_key_env"`
	SecretKeyEnv string `yaml:"secret_key_env"`
}

// apply validates the storage.s3 section.
func (fs *fileS3) apply(getenv func(string) string) (*S3, error) {
	s := &S3{Endpoint: fs.Endpoint, Region: fs.Region, Bucket: fs.Bucket, Prefix: fs.Prefix, PathStyle: fs.PathStyle}
	if s.Bucket == "" {
		return nil, fmt.Errorf("storage.s3.bucket: required")
	}
	if s.Endpoint != "" {
		u, err := url.Parse(s.Endpoint)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || (u.Path != "" && u.Path != "/") {
			return nil, fmt.Errorf("storage.s3.endpoint: %q is not an http:// or https:// URL of a server (no path)", s.Endpoint)
		}
	}
	if s.Prefix != "" && !strings.HasSuffix(s.Prefix, "/") {
		s.Prefix += "/"
	}
	if (fs.AccessKeyEnv == "") != (fs.SecretKeyEnv == "") {
		return nil, fmt.Errorf("storage.s3: set access_key_env and secret_key_env together, or neither (the AWS chain)")
	}
	var err error
	if s.AccessKey, err = readSecret("storage.s3", "access_key", fs.AccessKeyEnv, "", getenv); err != nil {
		return nil, err
	}
	if s.SecretKey, err = readSecret("storage.s3", "secret_key", fs.SecretKeyEnv, "", getenv); err != nil {
		return nil, err
	}
	return s, nil
}

// fileCluster is the cluster section.
type fileCluster struct {
	Redis     string `yaml:"redis"`
	RedisEnv  string `yaml:"redis_env"`
	Advertise string `yaml:"advertise"`
	SecretEnv string `yaml:"secret_env"`
}

// apply validates the cluster section and sets it on cfg.
func (fc *fileCluster) apply(cfg *Config, getenv func(string) string) error {
	if fc.Redis != "" && fc.RedisEnv != "" {
		return fmt.Errorf("cluster: set redis or redis_env, not both")
	}
	if fc.RedisEnv != "" {
		if fc.Redis = getenv(fc.RedisEnv); fc.Redis == "" {
			return fmt.Errorf("cluster.redis_env: %s is not set (or is empty)", fc.RedisEnv)
		}
	}
	if fc.Redis == "" {
		if fc.Advertise != "" || fc.SecretEnv != "" {
			return fmt.Errorf("cluster: advertise and secret_env need cluster.redis")
		}
		return nil
	}
	u, err := url.Parse(fc.Redis)
	if err != nil || (u.Scheme != "redis" && u.Scheme != "rediss") || u.Host == "" {
		return fmt.Errorf("cluster.redis: not a redis:// or rediss:// URL") // the URL may hold a password
	}
	if cfg.Storage.S3 == nil {
		return fmt.Errorf("cluster.redis: replicas need a store they share: set storage.s3")
	}
	if fc.Advertise != "" {
		if err := checkAdvertise(fc.Advertise); err != nil {
			return fmt.Errorf("cluster.advertise: %w", err)
		}
	}
	if fc.SecretEnv == "" {
		return fmt.Errorf("cluster.secret_env: required with cluster.redis (the variable holding the replicas' shared secret)")
	}
	secret, err := readSecret("cluster", "secret", fc.SecretEnv, "", getenv)
	if err != nil {
		return err
	}
	if len(secret) < 16 {
		return fmt.Errorf("cluster.secret_env: %s holds %d bytes; use at least 16 random ones", fc.SecretEnv, len(secret))
	}
	cfg.Cluster = Cluster{Redis: Secret(fc.Redis), Advertise: fc.Advertise, Secret: secret}
	return nil
}

// fileRedirect is the redirect section.
type fileRedirect struct {
	Enabled bool     `yaml:"enabled"`
	Expiry  *string  `yaml:"expiry"`
	Clients []string `yaml:"clients"`
	Direct  []string `yaml:"direct"`
}

// apply validates the redirect section and sets it on cfg.
func (fr *fileRedirect) apply(cfg *Config) error {
	r := cfg.Redirect
	r.Enabled = fr.Enabled
	if fr.Expiry != nil {
		d, err := parseTimeout(*fr.Expiry)
		if err != nil || d <= 0 {
			return fmt.Errorf("redirect.expiry: %q: want a duration such as 10m", *fr.Expiry)
		}
		if d > 7*24*time.Hour {
			return fmt.Errorf("redirect.expiry: %s is past the 7 days a presigned URL may last", d)
		}
		r.Expiry = d
	}
	var err error
	if r.Clients, err = parsePrefixes("redirect.clients", fr.Clients); err != nil {
		return err
	}
	if r.Direct, err = parsePrefixes("redirect.direct", fr.Direct); err != nil {
		return err
	}
	if r.Enabled && cfg.Storage.S3 == nil {
		return fmt.Errorf("redirect.enabled: redirects go to the object store: set storage.s3")
	}
	cfg.Redirect = r
	return nil
}

// parsePrefixes parses CIDRs (or single addresses), naming key[i] in
// errors.
func parsePrefixes(key string, in []string) ([]netip.Prefix, error) {
	var out []netip.Prefix
	for i, s := range in {
		p, err := netip.ParsePrefix(s)
		if err != nil {
			a, aerr := netip.ParseAddr(s)
			if aerr != nil {
				return nil, fmt.Errorf("%s[%d]: %q is not a CIDR such as 10.0.0.0/8", key, i, s)
			}
			p = netip.PrefixFrom(a, a.BitLen())
		}
		out = append(out, p.Masked())
	}
	return out, nil
}

// checkAdvertise accepts host:port with a numeric port, or an http:// or
// https:// URL without a path.
func checkAdvertise(a string) error {
	if strings.Contains(a, "://") {
		u, err := url.Parse(a)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || (u.Path != "" && u.Path != "/") || u.User != nil {
			return fmt.Errorf("%q is not an http:// or https:// URL of this replica (no path)", a)
		}
		return nil
	}
	host, port, err := net.SplitHostPort(a)
	if _, perr := strconv.Atoi(port); err != nil || perr != nil || host == "" {
		return fmt.Errorf("%q is not host:port, nor a URL", a)
	}
	return nil
}
