package derive

import (
	"errors"
	"fmt"
	"maps"
	"math"
	"path"
	"slices"
	"strconv"
	"strings"

	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/entrepot/entrepot/internal/oci"
)

// Validate checks every field of s and returns all the problems found,
// one per line, each naming its field the way a user finds it in the
// configuration: `derive[vault].files[1].mode: "0999" is not an octal
// mode`. List indexes count from 0.
func (s *Spec) Validate() error {
	v := validator{prefix: "derive[" + s.Name + "]"}
	if s.Name == "" {
		v.fail("name", "is required")
	} else if strings.Contains(s.Name, "/") || !oci.ValidName(s.Name) {
		v.fail("name", "%q is not a repository name component (lower-case letters and digits, joined by '.', '_' or '-')", s.Name)
	}
	if s.From == "" {
		v.fail("from", "is required")
	} else if _, err := oci.ParseReference(s.From); err != nil {
		v.fail("from", "%v", err)
	}
	if s.Tag != "" && !oci.ValidTag(s.Tag) {
		v.fail("tag", "%q is not a valid tag", s.Tag)
	} else if s.Tag == "" && s.From != "" && s.DerivedTag() == "" {
		v.fail("tag", "is required when from names a digest and no tag")
	}
	for i, p := range s.Platforms {
		if _, err := parsePlatform(p); err != nil {
			v.fail(fmt.Sprintf("platforms[%d]", i), "%v", err)
		}
	}
	for _, k := range slices.Sorted(maps.Keys(s.Env)) { // sorted: the same message every run
		if k == "" || strings.ContainsAny(k, "=\x00") {
			v.fail("env", "%q is not a variable name (empty, or has '=')", k)
		}
	}
	checkKeys(&v, "labels", s.Labels)
	checkKeys(&v, "annotations", s.Annotations)
	for i, vol := range s.Volumes {
		if err := checkImagePath(vol); err != nil {
			v.fail(fmt.Sprintf("volumes[%d]", i), "%q %v", vol, err)
		}
	}
	for i, p := range s.Expose {
		if _, err := exposedPort(p); err != nil {
			v.fail(fmt.Sprintf("expose[%d]", i), "%q %v", p, err)
		}
	}
	if strings.ContainsAny(s.User, " \t\n\x00") {
		v.fail("user", "%q has white space", s.User)
	}
	if s.Workdir != "" {
		if err := checkImagePath(s.Workdir); err != nil {
			v.fail("workdir", "%q %v", s.Workdir, err)
		}
	}
	s.validateFiles(&v)
	return errors.Join(v.errs...)
}

// validateFiles checks each entry of the extra layer on its own, then that
// no two share a path and that no entry sits under a file or a symlink
// (which would make the layer mean different things to different runtimes).
func (s *Spec) validateFiles(v *validator) {
	kinds := make(map[string]string, len(s.Files)) // path → kind of entry
	for i, f := range s.Files {
		field := fmt.Sprintf("files[%d]", i)
		if err := checkImagePath(f.Path); err != nil {
			v.fail(field+".path", "%q %v", f.Path, err)
			continue
		}
		if strings.HasPrefix(path.Base(f.Path), ".wh.") {
			v.fail(field+".path", "%q is a whiteout name, which would delete files of the base", f.Path)
		}
		if _, dup := kinds[f.Path]; dup {
			v.fail(field+".path", "%q is declared twice", f.Path)
		}
		n := 0
		for _, set := range []bool{f.Dir, f.Content != nil, f.Source != "", f.Symlink != ""} {
			if set {
				n++
			}
		}
		if n != 1 {
			v.fail(field, "must set exactly one of dir, content, source and symlink (has %d)", n)
		}
		if f.Source != "" && !path.IsAbs(f.Source) {
			v.fail(field+".source", "%q must be an absolute path on the cache host", f.Source)
		}
		if strings.ContainsRune(f.Symlink, 0) {
			v.fail(field+".symlink", "has a NUL byte")
		}
		if f.Mode != "" {
			if f.Symlink != "" {
				v.fail(field+".mode", "a symlink has no mode")
			} else if _, err := parseMode(f.Mode); err != nil {
				v.fail(field+".mode", "%q is not an octal mode (0000 to 7777)", f.Mode)
			}
		}
		if f.UID < 0 || f.UID > math.MaxInt32 {
			v.fail(field+".uid", "%d is out of range", f.UID)
		}
		if f.GID < 0 || f.GID > math.MaxInt32 {
			v.fail(field+".gid", "%d is out of range", f.GID)
		}
		kinds[f.Path] = f.kind()
	}
	for i, f := range s.Files {
		for dir := path.Dir(f.Path); dir != "/" && dir != "."; dir = path.Dir(dir) {
			if k, ok := kinds[dir]; ok && k != "dir" {
				v.fail(fmt.Sprintf("files[%d].path", i), "%q is under %q, which is not a directory", f.Path, dir)
				break
			}
		}
	}
}

// validator collects errors, each prefixed with the spec and field.
type validator struct {
	prefix string
	errs   []error
}

func (v *validator) fail(field, format string, args ...any) {
	v.errs = append(v.errs, fmt.Errorf("%s.%s: %s", v.prefix, field, fmt.Sprintf(format, args...)))
}

// checkKeys refuses empty keys in a map of labels or annotations.
func checkKeys(v *validator, field string, m map[string]string) {
	if _, ok := m[""]; ok {
		v.fail(field, "has an empty key")
	}
}

// checkImagePath checks a path inside the image: absolute, clean and not
// the root itself.
func checkImagePath(p string) error {
	switch {
	case p == "":
		return errors.New("is empty")
	case !path.IsAbs(p):
		return errors.New("must be an absolute path")
	case path.Clean(p) != p:
		return fmt.Errorf("is not clean (write %q)", path.Clean(p))
	case p == "/":
		return errors.New("is the root")
	case strings.ContainsRune(p, 0):
		return errors.New("has a NUL byte")
	}
	return nil
}

// parseMode parses octal permission bits, at most 07777 (the permission,
// setuid, setgid and sticky bits; the file type comes from the entry).
func parseMode(s string) (int64, error) {
	m, err := strconv.ParseUint(s, 8, 32)
	if err != nil || m > 0o7777 {
		return 0, fmt.Errorf("not an octal mode: %q", s)
	}
	return int64(m), nil
}

// parsePlatform parses "os/arch" or "os/arch/variant", as users write a
// platform to docker pull --platform.
func parsePlatform(s string) (v1.Platform, error) {
	parts := strings.Split(s, "/")
	if len(parts) < 2 || len(parts) > 3 || slices.Contains(parts, "") {
		return v1.Platform{}, fmt.Errorf("%q is not a platform such as linux/amd64 or linux/arm64/v8", s)
	}
	p := v1.Platform{OS: parts[0], Architecture: parts[1]}
	if len(parts) == 3 {
		p.Variant = parts[2]
	}
	return p, nil
}

// exposedPort normalises an exposed port as Docker writes it in a config:
// "8200" is "8200/tcp"; the protocol is tcp, udp or sctp.
func exposedPort(s string) (string, error) {
	port, proto, hasProto := strings.Cut(s, "/")
	if !hasProto {
		proto = "tcp"
	}
	n, err := strconv.ParseUint(port, 10, 16)
	if err != nil || n == 0 || strconv.FormatUint(n, 10) != port {
		return "", errors.New("is not a port such as 8200/tcp (1 to 65535)")
	}
	switch proto {
	case "tcp", "udp", "sctp":
		return port + "/" + proto, nil
	}
	return "", fmt.Errorf("has protocol %q; want tcp, udp or sctp", proto)
}
