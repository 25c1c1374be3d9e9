package derive

import (
	"bytes"
	"fmt"
	"reflect"
	"strings"
	"testing"

	yaml "go.yaml.in/yaml/v3"
)

// example is the spec users are shown, as they would write it.
const example = `
- name: vault
  from: docker.io/hashicorp/vault:1.14
  tag: ""
  platforms: [linux/amd64]
  env: {VAULT_LOG_LEVEL: info}
  labels: {team: platform}
  volumes: [/etc/vault]
  expose: ["8200/tcp"]
  user: "100:1000"
  workdir: /vault
  entrypoint: [docker-entrypoint.sh]
  cmd: [server]
  annotations: {org.example/x: y}
  files:
    - {path: /etc/vault, dir: true, mode: "0777"}
    - {path: /etc/vault/config.hcl, content: "ui = true\n", mode: "0644", uid: 100, gid: 1000}
    - {path: /etc/ssl/extra.pem, source: /path/on/the/cache/host}
    - {path: /usr/local/bin/v, symlink: /bin/vault}
    - {path: /etc/empty, content: ""}
`

func TestDecodeExample(t *testing.T) {
	specs, err := Decode(strings.NewReader(example))
	if err != nil {
		t.Fatal(err)
	}
	want := []Spec{{
		Name: "vault", From: "docker.io/hashicorp/vault:1.14",
		Platforms:   []string{"linux/amd64"},
		Env:         map[string]string{"VAULT_LOG_LEVEL": "info"},
		Labels:      map[string]string{"team": "platform"},
		Volumes:     []string{"/etc/vault"},
		Expose:      []string{"8200/tcp"},
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
			{Path: "/etc/empty", Content: ptr("")},
		},
	}}
	if !reflect.DeepEqual(specs, want) {
		t.Errorf("Decode:\n got %+v\nwant %+v", specs, want)
	}
}

// TestDecodeModes checks that an unquoted mode keeps the digits as
// written (YAML would otherwise read 0644 as a decimal or octal number).
func TestDecodeModes(t *testing.T) {
	specs, err := Decode(strings.NewReader("- {name: m, from: busybox, files: [{path: /a, content: x, mode: 0600}, {path: /b, dir: true, mode: 755}]}"))
	if err != nil {
		t.Fatal(err)
	}
	if m0, m1 := specs[0].Files[0].Mode, specs[0].Files[1].Mode; m0 != "0600" || m1 != "755" {
		t.Errorf("modes %q, %q; want 0600, 755 as written", m0, m1)
	}
}

// TestDecodeRefusesRun checks each key of command-running build tools is
// refused with the reason and what to write instead, at its line.
func TestDecodeRefusesRun(t *testing.T) {
	for _, key := range refusedKeys {
		t.Run(key, func(t *testing.T) {
			doc := fmt.Sprintf("- name: vault\n  from: busybox\n  %s: [mkdir /etc/vault]\n", key)
			_, err := Decode(strings.NewReader(doc))
			want := fmt.Sprintf(`line 3: derive[vault]: %q would need to execute the image, which Entrepot does not do; `+
				`declare the result instead: files (with mode, uid, gid) cover mkdir, chmod, chown and writing files; `+
				`env, user, workdir, volumes, entrypoint and cmd cover the rest`, key)
			if err == nil || err.Error() != want {
				t.Errorf("Decode() = %v;\nwant %s", err, want)
			}
		})
	}
}

// TestDecodeErrors checks the other refusals name where the problem is.
func TestDecodeErrors(t *testing.T) {
	tests := []struct {
		name, doc, want string
	}{
		{"unknown key", "- name: vault\n  from: busybox\n  evn: {A: b}\n", `line 3: derive[vault]: unknown key "evn"`},
		{"unknown file key", "- name: vault\n  from: busybox\n  files:\n    - {path: /a, contents: x}\n", `line 4: derive[vault].files[0]: unknown key "contents"`},
		{"invalid field", "- name: vault\n  from: busybox\n  user: a b\n", `derive[vault].user: "a b" has white space`},
		{"type error", "- name: vault\n  from: busybox\n  env: [a]\n", "cannot unmarshal !!seq into map[string]string"},
		{"not a list", "name: vault\n", "cannot unmarshal !!map into []derive.Spec"},
		{"duplicate name", "- {name: a, from: busybox}\n- {name: a, from: alpine}\n", "derive[a]: name is used twice"},
		{"two documents", "- {name: a, from: busybox}\n---\n- {name: b, from: alpine}\n", "more than one YAML document"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Decode(strings.NewReader(tt.doc))
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("Decode() = %v; want it to contain %q", err, tt.want)
			}
		})
	}
}

// TestDecodeEmpty checks an empty document is an empty list.
func TestDecodeEmpty(t *testing.T) {
	specs, err := Decode(strings.NewReader(""))
	if err != nil || len(specs) != 0 {
		t.Errorf("Decode(\"\") = %v, %v; want nothing", specs, err)
	}
}

// TestUnmarshalEmbedded checks that a spec embedded in another strict
// document (as the configuration will) is still strict and still refuses
// run: with its explanation.
func TestUnmarshalEmbedded(t *testing.T) {
	var cfg struct {
		Derive []Spec `yaml:"derive"`
	}
	dec := yaml.NewDecoder(strings.NewReader("derive:\n  - name: vault\n    from: busybox\n    RUN: chmod 777 /etc\n"))
	dec.KnownFields(true)
	err := dec.Decode(&cfg)
	if err == nil || !strings.HasPrefix(err.Error(), `line 4: derive[vault]: "RUN" would need to execute the image`) {
		t.Errorf("Decode() = %v; want the run refusal at line 4", err)
	}
}

// TestUnmarshalMerged checks that keys a merge key brings in are checked
// too: yaml.v3 would decode them without KnownFields.
func TestUnmarshalMerged(t *testing.T) {
	tests := []struct{ name, doc, want string }{
		{"run from an anchor", "templates:\n  t: &t {from: busybox, run: x}\nderive:\n  - <<: *t\n    name: a\n",
			`line 2: derive[a]: "run" would need to execute the image`},
		{"unknown key from a list of anchors", "templates:\n  t: &t {from: busybox}\n  u: &u {evn: x}\nderive:\n  - <<: [*t, *u]\n    name: a\n",
			`line 3: derive[a]: unknown key "evn"`},
		{"unknown file key from an alias", "templates:\n  f: &f [{path: /a, contnt: x}]\nderive:\n  - {name: a, from: busybox, files: *f}\n",
			`line 2: derive[a].files[0]: unknown key "contnt"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var cfg struct {
				Templates map[string]any `yaml:"templates"`
				Derive    []Spec         `yaml:"derive"`
			}
			dec := yaml.NewDecoder(strings.NewReader(tt.doc))
			dec.KnownFields(true)
			if err := dec.Decode(&cfg); err == nil || !strings.HasPrefix(err.Error(), tt.want) {
				t.Errorf("Decode() = %v; want %s…", err, tt.want)
			}
		})
	}
}

// FuzzDecode checks that no input makes Decode panic, and that whatever it
// accepts without source files can be built twice into the same layer.
func FuzzDecode(f *testing.F) {
	f.Add([]byte(example))
	f.Add([]byte("- {name: a, from: busybox, run: [x]}"))
	f.Add([]byte("- {name: a, from: busybox, files: [{path: /a, content: x, mode: 0777, uid: 1}, {path: /b, symlink: /a}]}"))
	f.Add([]byte("- &x {name: a, from: busybox}\n- {<<: *x, name: b}\n"))
	f.Add([]byte("[{files: [{}]}, 1, null]"))
	f.Fuzz(func(t *testing.T, data []byte) {
		specs, err := Decode(bytes.NewReader(data))
		if err != nil {
			return
		}
		for _, s := range specs {
			if err := s.Validate(); err != nil {
				t.Fatalf("Decode accepted a spec Validate refuses: %v", err)
			}
			if hasSource(s.Files) || len(s.Files) == 0 {
				continue
			}
			a, err := buildLayer(s.Files)
			if err != nil {
				t.Fatalf("valid files did not build: %v", err)
			}
			b, err := buildLayer(s.Files)
			if err != nil || a.digest != b.digest {
				t.Fatalf("two builds differ: %v, %v (%v)", a.digest, b.digest, err)
			}
		}
	})
}

func hasSource(files []File) bool {
	for _, f := range files {
		if f.Source != "" {
			return true
		}
	}
	return false
}
