package derive

import "testing"

// TestLayerGolden pins the extra layer's tar digest for a fixed set of
// files, so that a change to its bytes (entry order, times, owners, tar
// format) is seen here rather than as a new digest in users' caches. The
// gzip digest is not pinned: it also depends on the Go release's
// compress/flate, which is outside this package.
func TestLayerGolden(t *testing.T) {
	blob, err := buildLayer([]File{
		{Path: "/usr/local/bin/v", Symlink: "/bin/vault"},
		{Path: "/etc/vault/config.hcl", Content: ptr("ui = true\n"), Mode: "0644", UID: 100, GID: 1000},
		{Path: "/etc/vault", Dir: true, Mode: "0777"},
	})
	if err != nil {
		t.Fatal(err)
	}
	const want = "sha256:43ab2f4f46505af4e1778d9bd644f68512e6b188bc17fbae1a2bc17ab7962963"
	if got := blob.diffID.String(); got != want {
		t.Errorf("diff_id %s; want %s", got, want)
	}
}
