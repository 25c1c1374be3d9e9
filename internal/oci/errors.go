package oci

import "errors"

// The OCI distribution error codes Entrepot answers with, plus UNAVAILABLE
// (Distribution's code for a failing backend, used for upstream failures)
// and UNKNOWN (an internal error).
const (
	CodeBlobUnknown             = "BLOB_UNKNOWN"
	CodeBlobUploadUnknown       = "BLOB_UPLOAD_UNKNOWN"
	CodeDigestInvalid           = "DIGEST_INVALID"
	CodeManifestUnknown         = "MANIFEST_UNKNOWN"
	CodeManifestInvalid         = "MANIFEST_INVALID"
	CodeNameInvalid             = "NAME_INVALID"
	CodeNameUnknown             = "NAME_UNKNOWN"
	CodeSizeInvalid             = "SIZE_INVALID"
	CodeDenied                  = "DENIED"
	CodeUnauthorized            = "UNAUTHORIZED"
	CodeUnsupported             = "UNSUPPORTED"
	CodeTooManyRequests         = "TOOMANYREQUESTS"
	CodeRangeInvalid            = "RANGE_INVALID"
	CodePaginationNumberInvalid = "PAGINATION_NUMBER_INVALID"
	CodeUnavailable             = "UNAVAILABLE"
	CodeUnknown                 = "UNKNOWN"
)

// Errors a registry (an upstream, or a stand-in for one) reports, matched
// with errors.Is whatever the concrete error is.
var (
	// ErrNotFound: the registry does not have the name, manifest, tag or
	// blob asked for. A definite answer, unlike a failure.
	ErrNotFound = errors.New("not found")
	// ErrUnsupported: the registry does not offer the endpoint asked for
	// (the referrers API, for one).
	ErrUnsupported = errors.New("not supported by the registry")
	// ErrDigestMismatch: content does not hash to the digest asked for,
	// or a registry announced another digest than the one asked for.
	ErrDigestMismatch = errors.New("content does not match its digest")
	// ErrTooLarge: a manifest or other document is over MaxManifestSize.
	ErrTooLarge = errors.New("document too large")
	// ErrInvalid: an answer that cannot be used (an index without
	// manifests, a blob without a size, a tag list that is not JSON).
	ErrInvalid = errors.New("unusable registry answer")
)

// MaxManifestSize bounds manifests, tag lists and referrers indexes read
// from a registry (the distribution spec lets registries refuse manifests
// over 4 MiB).
const MaxManifestSize = 4 << 20
