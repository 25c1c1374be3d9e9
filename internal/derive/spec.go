package derive

import "github.com/entrepot/entrepot/internal/oci"

// Spec declares one derived image: a base (From) and the changes to make
// to it. The zero value of every change field means "keep the base's".
type Spec struct {
	// Name names the derived image within the cache's configuration, and
	// every error about it ("derive[vault]…"). It is one repository name
	// component: lower-case letters and digits joined by ".", "_", "__" or
	// dashes.
	Name string `yaml:"name"`
	// From is the base image reference, e.g. docker.io/hashicorp/vault:1.14.
	From string `yaml:"from"`
	// Tag is the derived image's tag; empty means the base's tag.
	Tag string `yaml:"tag"`
	// Platforms limits which of an index's platforms are derived
	// ("linux/amd64", "linux/arm64/v8"); empty means all of them. It is
	// not consulted when the base is a single image.
	Platforms []string `yaml:"platforms"`

	// Env is merged into the base's environment: a key the base already
	// sets is replaced where it stands, new keys are appended in sorted
	// order.
	Env map[string]string `yaml:"env"`
	// Labels are merged into the base's labels.
	Labels map[string]string `yaml:"labels"`
	// Volumes are added to the base's volumes (absolute paths).
	Volumes []string `yaml:"volumes"`
	// Expose adds exposed ports, "8200/tcp", "53/udp" or "8200" (TCP).
	Expose []string `yaml:"expose"`
	// User replaces the user ("name", "uid", "uid:gid").
	User string `yaml:"user"`
	// Workdir replaces the working directory (an absolute path).
	Workdir string `yaml:"workdir"`
	// Entrypoint replaces the entrypoint when set. As in Docker, setting
	// it clears the base's Cmd unless Cmd is given too. An empty list
	// (entrypoint: []) clears the entrypoint; leaving the key out keeps it.
	Entrypoint []string `yaml:"entrypoint"`
	// Cmd replaces the command when set; an empty list clears it.
	Cmd []string `yaml:"cmd"`
	// Annotations are added to the derived manifest (and index), next to
	// the org.opencontainers.image.base.* annotations this package sets.
	Annotations map[string]string `yaml:"annotations"`

	// Files are written to the one extra layer; none means no extra layer.
	Files []File `yaml:"files"`
}

// DerivedTag is the tag the derived image is published under: Tag, or
// else the base's tag, or else "latest" for a From with neither tag nor
// digest (as Docker reads it). It is "" for a From that names only a
// digest, which Validate refuses without a Tag, or that does not parse.
func (s *Spec) DerivedTag() string {
	if s.Tag != "" {
		return s.Tag
	}
	ref, err := oci.ParseReference(s.From)
	switch {
	case err != nil:
		return ""
	case ref.Tag != "":
		return ref.Tag
	case ref.Digest == "":
		return "latest"
	}
	return ""
}

// File is one entry of the extra layer. Exactly one of Dir, Content,
// Source and Symlink says what it is.
type File struct {
	// Path is where the entry goes in the image: absolute and clean.
	// Missing parent directories are not written: runtimes create them.
	Path string `yaml:"path"`

	// Dir makes the entry a directory.
	Dir bool `yaml:"dir"`
	// Content makes the entry a regular file with this content. It is a
	// pointer so that an empty file (content: "") can be declared.
	Content *string `yaml:"content"`
	// Source makes the entry a regular file with the content of this file
	// on the cache host, read when the image is built. It must be an
	// absolute path, so that the result does not depend on the working
	// directory.
	Source string `yaml:"source"`
	// Symlink makes the entry a symbolic link to this target.
	Symlink string `yaml:"symlink"`

	// Mode is the permission bits in octal ("0644", "4755"), at most 07777.
	// Empty means 0755 for a directory and 0644 for a file; a file copied
	// from Source does not take the host file's mode, so that a checkout's
	// umask cannot change the image. A symlink has no mode of its own.
	Mode string `yaml:"mode"`
	// UID and GID own the entry; both default to 0 (root).
	UID int `yaml:"uid"`
	GID int `yaml:"gid"`
}

// Default permission bits of entries that do not declare a mode.
const (
	DefaultDirMode  = 0o755
	DefaultFileMode = 0o644
	symlinkMode     = 0o777 // what every runtime reports for a symlink
)

// kind says what a File is; Validate makes sure exactly one is declared.
func (f File) kind() string {
	switch {
	case f.Dir:
		return "dir"
	case f.Content != nil:
		return "content"
	case f.Source != "":
		return "source"
	case f.Symlink != "":
		return "symlink"
	}
	return ""
}
