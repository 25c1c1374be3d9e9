package derive

import (
	"strings"
	"testing"
)

// valid is a spec with every field set correctly; each case of
// TestValidate breaks one field of a copy.
func valid() Spec {
	return Spec{
		Name: "vault", From: "docker.io/hashicorp/vault:1.14", Tag: "1.14-ours",
		Platforms:   []string{"linux/amd64", "linux/arm64/v8"},
		Env:         map[string]string{"VAULT_LOG_LEVEL": "info"},
		Labels:      map[string]string{"team": "platform"},
		Volumes:     []string{"/etc/vault"},
		Expose:      []string{"8200/tcp", "8201"},
		User:        "100:1000",
		Workdir:     "/vault",
		Entrypoint:  []string{"docker-entrypoint.sh"},
		Cmd:         []string{"server"},
		Annotations: map[string]string{"org.example/x": "y"},
		Files: []File{
			{Path: "/etc/vault", Dir: true, Mode: "0777"},
			{Path: "/etc/vault/config.hcl", Content: ptr("ui = true\n"), Mode: "0644", UID: 100, GID: 1000},
			{Path: "/etc/ssl/extra.pem", Source: "/path/on/the/cache/host"},
			{Path: "/usr/local/bin/v", Symlink: "/bin/vault"},
		},
	}
}

func TestValidateAcceptsTheExample(t *testing.T) {
	s := valid()
	if err := s.Validate(); err != nil {
		t.Fatal(err)
	}
}

// TestValidate breaks one field per case and checks the error names it.
func TestValidate(t *testing.T) {
	tests := []struct {
		name string
		edit func(s *Spec)
		want string
	}{
		{"no name", func(s *Spec) { s.Name = "" }, "derive[].name: is required"},
		{"name not a component", func(s *Spec) { s.Name = "Vault" }, `derive[Vault].name: "Vault" is not a repository name component`},
		{"name with a slash", func(s *Spec) { s.Name = "a/b" }, `derive[a/b].name:`},
		{"no from", func(s *Spec) { s.From = "" }, "derive[vault].from: is required"},
		{"bad from", func(s *Spec) { s.From = "docker.io/Hashicorp/vault" }, "derive[vault].from: image reference"},
		{"bad tag", func(s *Spec) { s.Tag = "-x" }, `derive[vault].tag: "-x" is not a valid tag`},
		{"digest only, no tag", func(s *Spec) { s.Tag, s.From = "", "busybox@sha256:"+strings.Repeat("a", 64) }, "derive[vault].tag: is required when from names a digest and no tag"},
		{"NUL in a symlink", func(s *Spec) { s.Files[3].Symlink = "/bin\x00" }, "derive[vault].files[3].symlink: has a NUL byte"},
		{"bad platform", func(s *Spec) { s.Platforms[1] = "linux" }, `derive[vault].platforms[1]: "linux" is not a platform`},
		{"env key with =", func(s *Spec) { s.Env["A=B"] = "c" }, `derive[vault].env: "A=B" is not a variable name`},
		{"empty label key", func(s *Spec) { s.Labels[""] = "c" }, "derive[vault].labels: has an empty key"},
		{"empty annotation key", func(s *Spec) { s.Annotations[""] = "c" }, "derive[vault].annotations: has an empty key"},
		{"relative volume", func(s *Spec) { s.Volumes[0] = "data" }, `derive[vault].volumes[0]: "data" must be an absolute path`},
		{"port out of range", func(s *Spec) { s.Expose[1] = "70000" }, `derive[vault].expose[1]: "70000" is not a port`},
		{"port protocol", func(s *Spec) { s.Expose[0] = "8200/http" }, `derive[vault].expose[0]: "8200/http" has protocol "http"`},
		{"user with a space", func(s *Spec) { s.User = "a b" }, `derive[vault].user: "a b" has white space`},
		{"unclean workdir", func(s *Spec) { s.Workdir = "/vault/../x" }, `derive[vault].workdir: "/vault/../x" is not clean (write "/x")`},
		{"bad mode", func(s *Spec) { s.Files[1].Mode = "0999" }, `derive[vault].files[1].mode: "0999" is not an octal mode`},
		{"mode too large", func(s *Spec) { s.Files[1].Mode = "17777" }, `derive[vault].files[1].mode: "17777" is not an octal mode`},
		{"mode on a symlink", func(s *Spec) { s.Files[3].Mode = "0777" }, "derive[vault].files[3].mode: a symlink has no mode"},
		{"two kinds", func(s *Spec) { s.Files[0].Content = ptr("x") }, "derive[vault].files[0]: must set exactly one of dir, content, source and symlink (has 2)"},
		{"no kind", func(s *Spec) { s.Files[2].Source = "" }, "derive[vault].files[2]: must set exactly one of dir, content, source and symlink (has 0)"},
		{"relative path", func(s *Spec) { s.Files[1].Path = "etc/x" }, `derive[vault].files[1].path: "etc/x" must be an absolute path`},
		{"unclean path", func(s *Spec) { s.Files[1].Path = "/etc//x" }, `derive[vault].files[1].path: "/etc//x" is not clean`},
		{"trailing slash", func(s *Spec) { s.Files[0].Path = "/etc/vault/" }, `derive[vault].files[0].path: "/etc/vault/" is not clean`},
		{"root", func(s *Spec) { s.Files[0].Path = "/" }, `derive[vault].files[0].path: "/" is the root`},
		{"whiteout", func(s *Spec) { s.Files[1].Path = "/etc/.wh.passwd" }, `derive[vault].files[1].path: "/etc/.wh.passwd" is a whiteout name`},
		{"duplicate path", func(s *Spec) { s.Files[2].Path = "/etc/vault/config.hcl" }, `derive[vault].files[2].path: "/etc/vault/config.hcl" is declared twice`},
		{"under a file", func(s *Spec) { s.Files[2].Path = "/etc/vault/config.hcl/x" }, `derive[vault].files[2].path: "/etc/vault/config.hcl/x" is under "/etc/vault/config.hcl", which is not a directory`},
		{"relative source", func(s *Spec) { s.Files[2].Source = "certs/x.pem" }, `derive[vault].files[2].source: "certs/x.pem" must be an absolute path on the cache host`},
		{"negative uid", func(s *Spec) { s.Files[1].UID = -1 }, "derive[vault].files[1].uid: -1 is out of range"},
		{"gid too large", func(s *Spec) { s.Files[1].GID = 1 << 40 }, "derive[vault].files[1].gid: 1099511627776 is out of range"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := valid()
			tt.edit(&s)
			err := s.Validate()
			if err == nil {
				t.Fatalf("Validate() = nil; want %q", tt.want)
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Errorf("Validate() = %q; want it to contain %q", err, tt.want)
			}
		})
	}
}

func TestDerivedTag(t *testing.T) {
	digest := "@sha256:" + strings.Repeat("a", 64)
	tests := []struct{ tag, from, want string }{
		{"", "docker.io/hashicorp/vault:1.14", "1.14"},
		{"mine", "docker.io/hashicorp/vault:1.14", "mine"},
		{"", "busybox", "latest"},
		{"", "busybox:1.36" + digest, "1.36"},
		{"", "busybox" + digest, ""},
		{"pinned", "busybox" + digest, "pinned"},
	}
	for _, tt := range tests {
		s := Spec{Tag: tt.tag, From: tt.from}
		if got := s.DerivedTag(); got != tt.want {
			t.Errorf("Spec{Tag: %q, From: %q}.DerivedTag() = %q; want %q", tt.tag, tt.from, got, tt.want)
		}
	}
}

// TestValidateReportsAll checks that every problem is reported, one per
// line, not only the first.
func TestValidateReportsAll(t *testing.T) {
	s := valid()
	s.Tag, s.Workdir, s.Files[1].Mode = "-x", "x", "9"
	err := s.Validate()
	if err == nil {
		t.Fatal("Validate() = nil")
	}
	if lines := strings.Split(err.Error(), "\n"); len(lines) != 3 {
		t.Errorf("Validate() reported %d problems; want 3:\n%v", len(lines), err)
	}
}
