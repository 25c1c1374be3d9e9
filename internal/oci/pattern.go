package oci

import (
	"errors"
	"fmt"
	"strings"
)

// A pattern names a set of images, for pins and warm-up lists: a
// reference in which * stands for any run of characters, "/" and ":"
// included. The registry is always written out:
//
//	docker.io/library/node:20*      tags of one repository
//	ghcr.io/org/*                   every repository under org/, every tag
//	quay.io/x/y@sha256:…            one manifest
//	docker.io/library/nginx         the whole repository
//
// A pattern with neither tag nor digest matches every tag and manifest of
// the repositories it names.

// maxPatternLength bounds a pattern, as maxReferenceLength bounds a
// reference.
const maxPatternLength = 1024

// CheckPattern tells why p is not a pattern, or returns nil.
func CheckPattern(p string) error {
	if p == "" {
		return errors.New("empty pattern")
	}
	if len(p) > maxPatternLength {
		return errors.New("pattern too long")
	}
	host, rest, ok := strings.Cut(p, "/")
	if !ok || rest == "" || !IsHost(host) {
		return fmt.Errorf("pattern %q must start with a registry, e.g. docker.io/library/node:20*", p)
	}
	for i := 0; i < len(rest); i++ {
		b := rest[i]
		if !isAlnum(b) && !strings.ContainsRune("._-/:@*", rune(b)) {
			return fmt.Errorf("pattern %q: character %q is not allowed", p, b)
		}
	}
	if at := strings.IndexByte(rest, '@'); at >= 0 && !strings.Contains(rest[at:], "*") {
		if _, err := ParseDigest(rest[at+1:]); err != nil {
			return fmt.Errorf("pattern %q: invalid digest: %w", p, err)
		}
	}
	return nil
}

// MatchPattern tells whether pattern p matches image, a reference written
// registry/repository, registry/repository:tag or registry/repository@digest.
func MatchPattern(p, image string) bool {
	if glob(p, image) {
		return true
	}
	// A pattern without tag or digest names whole repositories.
	if strings.ContainsAny(p[strings.LastIndexByte(p, '/')+1:], ":@") {
		return false
	}
	name := image
	if i := strings.IndexByte(image, '@'); i >= 0 {
		name = image[:i]
	} else if i := strings.LastIndexByte(image, ':'); i > strings.LastIndexByte(image, '/') {
		name = image[:i]
	}
	return name != image && glob(p, name)
}

// glob matches s against p, where * matches any run of bytes. It runs in
// O(len(p)·len(s)) at worst, backtracking only to the last star.
func glob(p, s string) bool {
	star, next := -1, 0 // the last star seen in p, and where in s its match ends
	i, j := 0, 0
	for j < len(s) {
		switch {
		case i < len(p) && p[i] == '*':
			star, next = i, j
			i++
		case i < len(p) && p[i] == s[j]:
			i++
			j++
		case star >= 0:
			next++
			i, j = star+1, next
		default:
			return false
		}
	}
	for i < len(p) && p[i] == '*' {
		i++
	}
	return i == len(p)
}

// A repository pattern names images of one registry without naming the
// registry, for the approved-images policies of an upstream: a repository
// pattern, optionally followed by ":" and a tag pattern. As in the
// patterns above, * matches any run of characters, "/" included (so ** is
// the same as *), but a repository pattern and its tag pattern are matched
// apart: * never reaches from the repository into the tag.
//
//	library/nginx        every tag and manifest of one repository
//	library/node:20*     tags of one repository
//	myorg/*              every repository under myorg/, at any depth
//	library/*:1.27.*     those tags of every repository under library/
//
// A repository pattern names no digest: an image by digest is matched by
// its repository alone.

// CheckRepoPattern tells why p is not a repository pattern, or returns nil.
// A star stands for any characters, so the pattern is checked as the name
// (and tag) it would be with each star written as one letter: a pattern
// that could match no valid name, such as library/Nginx or myorg/, is
// refused.
func CheckRepoPattern(p string) error {
	switch {
	case p == "":
		return errors.New("empty pattern")
	case len(p) > maxPatternLength:
		return errors.New("pattern too long")
	case strings.Contains(p, "@"):
		return fmt.Errorf("pattern %q names a digest: name a repository, or a repository and a tag, e.g. library/nginx:1.27", p)
	}
	repo, tag, tagged := strings.Cut(p, ":")
	if !ValidName(strings.ReplaceAll(repo, "*", "x")) {
		return fmt.Errorf("pattern %q: %q is not a repository pattern (lowercase letters, digits, separators . _ - and /, and *), e.g. library/nginx or myorg/*", p, repo)
	}
	if tagged && !ValidTag(strings.ReplaceAll(tag, "*", "x")) {
		return fmt.Errorf("pattern %q: %q is not a tag pattern, e.g. 1.27 or 20*", p, tag)
	}
	return nil
}

// SplitRepoPattern splits a repository pattern into its repository and tag
// patterns; tag is "" when p names whole repositories.
func SplitRepoPattern(p string) (repo, tag string) {
	repo, tag, _ = strings.Cut(p, ":")
	return repo, tag
}

// Glob tells whether s matches p, where * matches any run of characters.
func Glob(p, s string) bool { return glob(p, s) }
