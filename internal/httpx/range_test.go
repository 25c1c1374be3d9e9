package httpx

import (
	"errors"
	"testing"
)

func TestParseRange(t *testing.T) {
	for _, tc := range []struct {
		name        string
		header      string
		size        int64
		first, last int64
		ok          bool
		err         error
	}{
		{name: "no header", header: "", size: 10},
		{name: "first byte", header: "bytes=0-0", size: 10, first: 0, last: 0, ok: true},
		{name: "open end", header: "bytes=0-", size: 10, first: 0, last: 9, ok: true},
		{name: "open end from the middle", header: "bytes=4-", size: 10, first: 4, last: 9, ok: true},
		{name: "closed range", header: "bytes=10-19", size: 100, first: 10, last: 19, ok: true},
		{name: "last byte", header: "bytes=9-9", size: 10, first: 9, last: 9, ok: true},
		{name: "suffix", header: "bytes=-5", size: 10, first: 5, last: 9, ok: true},
		{name: "suffix of one", header: "bytes=-1", size: 10, first: 9, last: 9, ok: true},
		{name: "empty suffix", header: "bytes=-0", size: 10, err: ErrRangeInvalid},
		{name: "suffix longer than content is the whole", header: "bytes=-100", size: 10, first: 0, last: 9, ok: true},
		{name: "huge suffix", header: "bytes=-9223372036854775807", size: 10, first: 0, last: 9, ok: true},
		{name: "end past size is clamped", header: "bytes=5-1000", size: 10, first: 5, last: 9, ok: true},
		{name: "end at max int64", header: "bytes=0-9223372036854775807", size: 10, first: 0, last: 9, ok: true},
		{name: "start at size", header: "bytes=10-", size: 10, err: ErrRangeInvalid},
		{name: "start past size", header: "bytes=11-20", size: 10, err: ErrRangeInvalid},
		{name: "end before start", header: "bytes=5-3", size: 10, err: ErrRangeInvalid},
		{name: "letters", header: "bytes=a-b", size: 10, err: ErrRangeInvalid},
		{name: "no dash", header: "bytes=5", size: 10, err: ErrRangeInvalid},
		{name: "empty spec", header: "bytes=", size: 10, err: ErrRangeInvalid},
		{name: "dash only", header: "bytes=-", size: 10, err: ErrRangeInvalid},
		{name: "two dashes", header: "bytes=1-2-3", size: 10, err: ErrRangeInvalid},
		{name: "space around the spec is trimmed", header: "bytes= 1-2 ", size: 10, first: 1, last: 2, ok: true},
		{name: "space inside the spec", header: "bytes=1 -2", size: 10, err: ErrRangeInvalid},
		{name: "several ranges are ignored", header: "bytes=1-2,4-5", size: 10},
		{name: "several ranges, one invalid, are ignored", header: "bytes=x,4-5", size: 10},
		{name: "other unit is ignored", header: "items=0-1", size: 10},
		{name: "unit is case-sensitive", header: "Bytes=0-1", size: 10},
		{name: "size 0, from start", header: "bytes=0-", size: 0, err: ErrRangeInvalid},
		{name: "size 0, suffix", header: "bytes=-5", size: 0, err: ErrRangeInvalid},
		{name: "size unknown is ignored", header: "bytes=0-1", size: -1},
		{name: "size unknown, malformed, is ignored", header: "bytes=a-b", size: -1},
		{name: "overflowing start", header: "bytes=99999999999999999999-", size: 10, err: ErrRangeInvalid},
		{name: "overflowing end", header: "bytes=0-99999999999999999999", size: 10, err: ErrRangeInvalid},
		{name: "overflowing suffix", header: "bytes=-99999999999999999999", size: 10, err: ErrRangeInvalid},
		{name: "plus sign", header: "bytes=+1-2", size: 10, err: ErrRangeInvalid},
		{name: "minus sign", header: "bytes=1--2", size: 10, err: ErrRangeInvalid},
		{name: "negative suffix", header: "bytes=--2", size: 10, err: ErrRangeInvalid},
		{name: "hex", header: "bytes=0x1-2", size: 10, err: ErrRangeInvalid},
	} {
		t.Run(tc.name, func(t *testing.T) {
			first, last, ok, err := ParseRange(tc.header, tc.size)
			if first != tc.first || last != tc.last || ok != tc.ok || !errors.Is(err, tc.err) || (err == nil) != (tc.err == nil) {
				t.Errorf("ParseRange(%q, %d) = %d, %d, %t, %v; want %d, %d, %t, %v",
					tc.header, tc.size, first, last, ok, err, tc.first, tc.last, tc.ok, tc.err)
			}
		})
	}
}

// FuzzParseRange checks that ParseRange never panics and that a range it
// accepts lies within the content.
func FuzzParseRange(f *testing.F) {
	f.Add("", int64(10))
	f.Add("bytes=0-0", int64(1))
	f.Add("bytes=10-19", int64(100))
	f.Add("bytes=-5", int64(10))
	f.Add("bytes=-100", int64(10))
	f.Add("bytes=5-3", int64(10))
	f.Add("bytes=1-2,4-5", int64(10))
	f.Add("bytes=99999999999999999999-", int64(10))
	f.Add("bytes=0-9223372036854775807", int64(9223372036854775807))
	f.Add("bytes=-9223372036854775807", int64(1))
	f.Add("bytes= 1-2", int64(0))
	f.Add("items=0-1", int64(-1))
	f.Fuzz(func(t *testing.T, header string, size int64) {
		first, last, ok, err := ParseRange(header, size)
		switch {
		case ok && err != nil:
			t.Fatalf("ParseRange(%q, %d): ok with error %v", header, size, err)
		case err != nil && !errors.Is(err, ErrRangeInvalid):
			t.Fatalf("ParseRange(%q, %d): error %v, want ErrRangeInvalid", header, size, err)
		case !ok && (first != 0 || last != 0):
			t.Fatalf("ParseRange(%q, %d) = %d, %d, not ok: want zero offsets", header, size, first, last)
		case ok && !(0 <= first && first <= last && last < size):
			t.Fatalf("ParseRange(%q, %d) = %d, %d: outside the content", header, size, first, last)
		case size < 0 && (ok || err != nil):
			t.Fatalf("ParseRange(%q, %d) = %t, %v: unknown size must serve the whole", header, size, ok, err)
		}
	})
}
