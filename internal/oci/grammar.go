package oci

import (
	"regexp"
	"strings"

	"github.com/opencontainers/go-digest"

	_ "crypto/sha256" // digest algorithms that go-digest may parse
	_ "crypto/sha512"
)

// MaxNameLength bounds a repository name, as Distribution does.
const MaxNameLength = 255

// The OCI distribution spec writes its grammar as regular expressions:
//
//	name: [a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*(\/[a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*)*
//	tag:  [a-zA-Z0-9_][a-zA-Z0-9._-]{0,127}
//
// Every request is checked against them, so they are matched here by hand,
// at a tenth of a regexp's cost; the fuzz tests check the two agree.

// ValidName tells whether s is a repository name per the OCI grammar, and
// no longer than Distribution allows.
func ValidName(s string) bool {
	if len(s) == 0 || len(s) > MaxNameLength {
		return false
	}
	for c := range strings.SplitSeq(s, "/") {
		if !validComponent(c) {
			return false
		}
	}
	return true
}

// validComponent matches one path component: runs of [a-z0-9] joined by
// ".", "_", "__" or any number of "-".
func validComponent(c string) bool {
	i := 0
	for {
		start := i
		for i < len(c) && isLowerAlnum(c[i]) {
			i++
		}
		switch {
		case i == start:
			return false // empty, or a separator at the start or after another
		case i == len(c):
			return true
		case c[i] == '.':
			i++
		case c[i] == '_':
			i++
			if i < len(c) && c[i] == '_' {
				i++
			}
		case c[i] == '-':
			for i < len(c) && c[i] == '-' {
				i++
			}
		default:
			return false
		}
	}
}

// ValidTag tells whether s is a tag.
func ValidTag(s string) bool {
	if len(s) == 0 || len(s) > 128 || !(isAlnum(s[0]) || s[0] == '_') {
		return false
	}
	for i := 1; i < len(s); i++ {
		if b := s[i]; !(isAlnum(b) || b == '.' || b == '_' || b == '-') {
			return false
		}
	}
	return true
}

func isLowerAlnum(b byte) bool { return 'a' <= b && b <= 'z' || '0' <= b && b <= '9' }

func isAlnum(b byte) bool { return isLowerAlnum(b) || 'A' <= b && b <= 'Z' }

func isLowerHex(s string) bool {
	for i := range len(s) {
		if b := s[i]; !('0' <= b && b <= '9' || 'a' <= b && b <= 'f') {
			return false
		}
	}
	return true
}

// ParseDigest parses a digest such as sha256:<64 hex>. The common case is
// checked by hand: go-digest checks the hex with a regular expression,
// which was most of a request's routing cost.
func ParseDigest(s string) (digest.Digest, error) {
	if hex, ok := strings.CutPrefix(s, "sha256:"); ok && len(hex) == 64 && isLowerHex(hex) {
		return digest.Digest(s), nil
	}
	d, err := digest.Parse(s)
	if err != nil {
		return "", err
	}
	return d, nil
}

// hostRE matches a registry host with an optional port.
var hostRE = regexp.MustCompile(`^[a-z0-9](?:[a-z0-9.-]*[a-z0-9])?(?::[0-9]+)?$`)

// IsHost tells a registry host (the first part of a reference) from a
// Docker Hub namespace, the way Docker's reference parser does: a dot, a
// port, or "localhost", and a valid host name.
func IsHost(s string) bool {
	return (strings.ContainsAny(s, ".:") || s == "localhost") && hostRE.MatchString(s)
}
