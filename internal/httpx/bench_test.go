package httpx

import "testing"

func BenchmarkParseRange(b *testing.B) {
	b.ReportAllocs()
	for b.Loop() {
		if _, _, ok, err := ParseRange("bytes=1048576-2097151", 1<<30); !ok || err != nil {
			b.Fatal(ok, err)
		}
	}
}
