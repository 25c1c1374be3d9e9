package audit

import (
	"bufio"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"testing"

	"github.com/entrepot/entrepot/internal/httpx"
)

// read returns the records of the file at path.
func read(t *testing.T, path string) []Record {
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var out []Record
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		var r Record
		if err := json.Unmarshal(sc.Bytes(), &r); err != nil {
			t.Fatalf("not a JSON line: %q", sc.Text())
		}
		out = append(out, r)
	}
	return out
}

// A manifest pull and a refused blob are recorded, with who, what, the
// decision, its rule and the digest; an allowed blob is not. After the
// file is moved away and Reopen called, lines go to a new file.
func TestTrailAndRotation(t *testing.T) {
	path := filepath.Join(t.TempDir(), "audit.jsonl")
	l, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	h := httpx.Chain(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		info := httpx.InfoOf(r.Context())
		info.Upstream, info.Repo, info.Client = "docker.io", "library/nginx", r.URL.Query().Get("user")
		info.Kind, info.Ref, info.Rule = r.URL.Query().Get("kind"), "1.27", r.URL.Query().Get("rule")
		if r.URL.Query().Get("deny") != "" {
			w.WriteHeader(http.StatusForbidden)
			return
		}
		w.Header().Set("Docker-Content-Digest", "sha256:abc")
		w.Write([]byte("{}"))
	}), httpx.RequestID, l.Middleware)
	get := func(query string) {
		h.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest("GET", "/v2/x?"+query, nil))
	}
	get("kind=manifest&user=alice&rule=access[0]")
	get("kind=blob&user=alice")
	get("kind=blob&user=bob&deny=1&rule=no+access+rule+grants+bob")

	recs := read(t, path)
	if len(recs) != 2 {
		t.Fatalf("%d records: %+v; want the manifest and the refusal", len(recs), recs)
	}
	if r := recs[0]; r.Client != "alice" || r.Decision != "allowed" || r.Rule != "access[0]" || r.Digest != "sha256:abc" ||
		r.Repo != "library/nginx" || r.Upstream != "docker.io" || r.Ref != "1.27" || r.Result != "hit" || r.RequestID == "" || r.Address == "" {
		t.Errorf("manifest record: %+v", r)
	}
	if r := recs[1]; r.Client != "bob" || r.Decision != "denied" || r.Status != 403 || r.Result != "denied" || r.Rule == "" {
		t.Errorf("refusal record: %+v", r)
	}

	rotated := path + ".1"
	if err := os.Rename(path, rotated); err != nil {
		t.Fatal(err)
	}
	get("kind=manifest&user=carol")
	if err := l.Reopen(); err != nil {
		t.Fatal(err)
	}
	get("kind=manifest&user=dave")
	if old, now := read(t, rotated), read(t, path); len(old) != 3 || old[2].Client != "carol" || len(now) != 1 || now[0].Client != "dave" {
		t.Fatalf("after rotation: old file %+v, new file %+v", old, now)
	}
}
