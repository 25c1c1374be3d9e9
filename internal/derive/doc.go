// Package derive builds derived images without a container runtime: an
// upstream base image plus a few declared changes (environment, labels,
// user, entrypoint, files…), written as a new image config and at most one
// small extra layer on top of the base's unchanged layers.
//
// Nothing is executed: a derived image is declared, never built by running
// commands in the base, so building it needs no runtime, no privileges and
// no network beyond the base's own blobs. The extra layer is reproducible:
// the same Spec and the same source files always give the same bytes, so
// the derived image's digests are stable across builds and hosts.
//
// The flow is: users write a list of Spec under the cache's "derive:" key;
// Decode (or a strict YAML decoder) reads it and Validate checks each one;
// Image or Index then derives from a base the caller has fetched.
package derive
