package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/validate"

	"github.com/entrepot/entrepot/internal/audit"
	"github.com/entrepot/entrepot/internal/dashboard"
	"github.com/entrepot/entrepot/internal/testenv"
)

// A derived image declared in the configuration pulls whole through
// entrepot serve; entrepot ls shows it with its base, the dashboard's
// snapshot lists it, and the audit trail records the base it was built
// from.
func TestServeDerived(t *testing.T) {
	bin := build(t)
	o := newOrigin(t)
	o.push(t, 1) // library/app:img0
	addr, admin := freeAddr(t), freeAddr(t)
	trail := filepath.Join(t.TempDir(), "audit.jsonl")
	conf := filepath.Join(t.TempDir(), "entrepot.yaml")
	yaml := fmt.Sprintf(`listen: %s
data: %s
admin:
  listen: %s
  token_env: TEST_ADMIN_TOKEN
audit:
  file: %s
warm:
  images: [derived/app:v1]
upstreams:
  - name: docker.io
    url: %s
derive:
  - name: app
    from: docker.io/library/app:img0
    tag: v1
    env: {MODE: cached}
    files:
      - {path: /etc/app, dir: true, mode: "0777"}
`, addr, t.TempDir(), admin, trail, o.URL)
	if err := os.WriteFile(conf, []byte(yaml), 0o644); err != nil {
		t.Fatal(err)
	}
	testenv.Start(t, bin, []string{"serve", "--config", conf}, []string{"TEST_ADMIN_TOKEN=" + testToken}, testenv.DialReady(addr))

	// The warm-up at start builds it, before any pull.
	var snap dashboard.Snapshot
	deadline := time.Now().Add(20 * time.Second)
	for len(snap.Derived) == 0 || snap.Derived[0].Digest == "" {
		if time.Now().After(deadline) {
			t.Fatalf("the warm-up did not build derived/app:v1: %+v", snap.Derived)
		}
		time.Sleep(50 * time.Millisecond)
		snap = dashboardSnapshot(t, admin)
	}

	ref, err := name.ParseReference(addr+"/derived/app:v1", name.Insecure)
	if err != nil {
		t.Fatal(err)
	}
	img, err := remote.Image(ref)
	if err != nil {
		t.Fatal(err)
	}
	if err := validate.Image(img); err != nil {
		t.Fatalf("derived image: %v", err)
	}
	d, _ := img.Digest()
	base, err := remote.Head(mustParse(t, addr+"/docker.io/library/app:img0"))
	if err != nil {
		t.Fatal(err)
	}

	ls := exec.Command(bin, "ls", "--admin", "http://"+admin, "derived/app")
	ls.Env = append(os.Environ(), "ENTREPOT_ADMIN_TOKEN="+testToken)
	out, err := ls.CombinedOutput()
	if err != nil {
		t.Fatalf("entrepot ls: %v\n%s", err, out)
	}
	if s := string(out); !strings.Contains(s, "derived/app") || !strings.Contains(s, "v1") ||
		!strings.Contains(s, "base "+base.Digest.String()[:19]) || !strings.Contains(s, "pinned") {
		t.Errorf("entrepot ls:\n%s\nwant derived/app v1, pinned, with base %s", s, base.Digest)
	}

	snap = dashboardSnapshot(t, admin)
	if len(snap.Derived) != 1 || snap.Derived[0].Digest.String() != d.String() || snap.Derived[0].BaseDigest.String() != base.Digest.String() {
		t.Errorf("dashboard's derived images: %+v; want app at %s from %s", snap.Derived, d, base.Digest)
	}

	f, err := os.Open(trail)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var built *audit.Record
	for sc := bufio.NewScanner(f); sc.Scan(); {
		var r audit.Record
		if json.Unmarshal(sc.Bytes(), &r) == nil && r.Kind == "derive" {
			built = &r
		}
	}
	if want := "docker.io/library/app:img0@" + base.Digest.String(); built == nil || built.Digest != d.String() || built.Base != want {
		t.Errorf("audit trail's build record %+v; want digest %s, base %s", built, d, want)
	}
}

// dashboardSnapshot reads the dashboard's snapshot from the admin API.
func dashboardSnapshot(t *testing.T, admin string) dashboard.Snapshot {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, "http://"+admin+"/api/v1/dashboard", nil)
	req.Header.Set("Authorization", "Bearer "+testToken)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var snap dashboard.Snapshot
	if err := json.NewDecoder(resp.Body).Decode(&snap); err != nil {
		t.Fatal(err)
	}
	return snap
}

func mustParse(t *testing.T, s string) name.Reference {
	t.Helper()
	ref, err := name.ParseReference(s, name.Insecure)
	if err != nil {
		t.Fatal(err)
	}
	return ref
}
