package route

import "testing"

func BenchmarkParse(b *testing.B) {
	t := newTestTable()
	for _, bc := range []struct{ name, path, ns string }{
		{"prefix tag", "/v2/ghcr.io/org/app/manifests/1.2.3", ""},
		{"default blob", "/v2/nginx/blobs/sha256:" + hex64, ""},
		{"ns digest", "/v2/library/nginx/manifests/sha256:" + hex64, "docker.io"},
	} {
		b.Run(bc.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if _, err := t.Parse(bc.path, bc.ns); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

const hex64 = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
