package main

import (
	"context"
	"log/slog"
	"net/http"
	"net/netip"
	"time"

	"github.com/entrepot/entrepot/internal/cache"
	"github.com/entrepot/entrepot/internal/cluster"
	"github.com/entrepot/entrepot/internal/config"
	"github.com/entrepot/entrepot/internal/store"
	"github.com/entrepot/entrepot/internal/store/fs"
	"github.com/entrepot/entrepot/internal/store/s3"
)

// openStore returns the store of cfg: the data directory's, or, with
// storage.s3, the bucket's content and records over the data directory's
// spool (fills still arrive on local disk).
func openStore(ctx context.Context, cfg *config.Config, dir *fs.Dir, log *slog.Logger) (store.Store, error) {
	local := dir.Store()
	b := cfg.Storage.S3
	if b == nil {
		return local, nil
	}
	bucket, err := s3.New(ctx, s3.Config{
		Endpoint: b.Endpoint, Region: b.Region, Bucket: b.Bucket, Prefix: b.Prefix, PathStyle: b.PathStyle,
		AccessKey: b.AccessKey.Reveal(), SecretKey: b.SecretKey.Reveal(),
	}, local.Spool, log)
	if err != nil {
		return store.Store{}, err
	}
	return bucket.Store(), nil
}

// joinCluster joins the replicas of cfg.Cluster, if set; nil otherwise.
func joinCluster(ctx context.Context, cfg *config.Config, log *slog.Logger) (*cluster.Cluster, error) {
	if !cfg.Cluster.Enabled() {
		return nil, nil
	}
	return cluster.New(ctx, cluster.Config{
		Redis:     cfg.Cluster.Redis.Reveal(),
		Advertise: cfg.Cluster.Advertise,
		Secret:    cfg.Cluster.Secret.Reveal(),
	}, log)
}

// asCluster is cl as the cache's Cluster: a nil *cluster.Cluster is no
// cluster, not a non-nil interface holding nil.
func asCluster(cl *cluster.Cluster) cache.Cluster {
	if cl == nil {
		return nil
	}
	return cl
}

// redirector decides which blob GETs answer with a redirect to the object
// store (the redirect section): nil when redirects are off.
func redirector(cfg config.Redirect) func(*http.Request) (time.Duration, bool) {
	if !cfg.Enabled {
		return nil
	}
	return func(r *http.Request) (time.Duration, bool) {
		ap, err := netip.ParseAddrPort(r.RemoteAddr)
		if err != nil {
			return 0, false
		}
		return cfg.Expiry, cfg.Redirects(ap.Addr())
	}
}
