// Package oci is the vocabulary of the OCI distribution and image specs that
// every other package shares: the grammar of names, tags and digests, media
// types, error codes, descriptors, and the mapping between a client's image
// reference (docker.io/library/nginx:1.27, nginx, ghcr.io/org/app@sha256:…)
// and its path on the cache (<cache-host>/docker.io/library/nginx:1.27).
//
// It is a leaf: it imports nothing of Entrepot's.
package oci
