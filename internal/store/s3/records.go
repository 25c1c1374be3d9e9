package s3

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"strings"

	"github.com/minio/minio-go/v7"
)

// recordKey is the object key of the record under key, which must be a
// slash path of proper names (as the filesystem's).
func (b *Bucket) recordKey(key string) (string, error) {
	for _, part := range strings.Split(key, "/") {
		if part == "" || part == "." || part == ".." || strings.ContainsAny(part, "\\\x00") {
			return "", fmt.Errorf("s3: invalid record key %q", key)
		}
	}
	return b.recordsPrefix() + key, nil
}

func (b *Bucket) recordsPrefix() string { return b.prefix + "records/" }

// Get implements store.Records.
func (r records) Get(ctx context.Context, key string) ([]byte, error) {
	k, err := r.recordKey(key)
	if err != nil {
		return nil, err
	}
	body, _, _, err := r.core.GetObject(ctx, r.name, k, minio.GetObjectOptions{})
	if err != nil {
		return nil, fmt.Errorf("s3: get %s: %w", key, notFound(err))
	}
	defer body.Close()
	v, err := io.ReadAll(body)
	if err != nil {
		return nil, fmt.Errorf("s3: get %s: %w", key, err)
	}
	return v, nil
}

// Put implements store.Records: one PUT, which S3 applies whole or not at
// all.
func (r records) Put(ctx context.Context, key string, value []byte) error {
	k, err := r.recordKey(key)
	if err != nil {
		return err
	}
	if _, err := r.core.PutObject(ctx, r.name, k, bytes.NewReader(value), int64(len(value)), "", "", minio.PutObjectOptions{}); err != nil {
		return fmt.Errorf("s3: put %s: %w", key, err)
	}
	return nil
}

// Delete implements store.Records. S3 deletes a missing key without
// complaint.
func (r records) Delete(ctx context.Context, key string) error {
	k, err := r.recordKey(key)
	if err != nil {
		return err
	}
	if err := r.client.RemoveObject(ctx, r.name, k, minio.RemoveObjectOptions{}); err != nil {
		return fmt.Errorf("s3: delete %s: %w", key, err)
	}
	return nil
}

// Walk implements store.Records. The listing is of the keys that begin
// with prefix's; of those, the ones under another name that begins alike
// (a/bc under a/b) are skipped.
func (r records) Walk(ctx context.Context, prefix string, fn func(string) error) error {
	base := r.recordsPrefix()
	under := base
	if prefix != "" {
		k, err := r.recordKey(prefix)
		if err != nil {
			return err
		}
		under = k
	}
	return r.list(ctx, under, func(obj minio.ObjectInfo) error {
		if prefix != "" && obj.Key != under && !strings.HasPrefix(obj.Key, under+"/") {
			return nil
		}
		return fn(strings.TrimPrefix(obj.Key, base))
	})
}
