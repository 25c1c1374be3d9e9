package cache_test

import (
	"go/build"
	"strings"
	"testing"
)

// The cache is policy over its seams: it imports the vocabulary (oci) and
// the store's interfaces of Entrepot's packages, nothing of HTTP, and
// reaches upstreams only through the Source interface. oci is a leaf.
func TestImportGraph(t *testing.T) {
	for _, tc := range []struct {
		dir     string
		allowed []string
	}{
		{".", []string{"internal/oci", "internal/store"}},
		{"../oci", nil},
	} {
		pkg, err := build.ImportDir(tc.dir, 0)
		if err != nil {
			t.Fatal(err)
		}
		for _, imp := range pkg.Imports {
			ours := strings.HasPrefix(imp, "github.com/entrepot/entrepot/")
			if imp == "net/http" || ours && !allowed(imp, tc.allowed) {
				t.Errorf("package %s imports %s", pkg.Name, imp)
			}
		}
	}
}

func allowed(imp string, list []string) bool {
	for _, a := range list {
		if strings.HasSuffix(imp, "/"+a) {
			return true
		}
	}
	return false
}
