package httpx

import (
	"errors"
	"strconv"
	"strings"
)

// ErrRangeInvalid is returned for a Range header that is malformed or that
// no byte of the content satisfies (416).
var ErrRangeInvalid = errors.New("invalid or unsatisfiable range")

// ParseRange reads a Range header against content of the given size and
// returns the first and last byte offsets, inclusive. ok is false when the
// whole content should be served: no header, a unit other than bytes, or
// several ranges (which HTTP lets a server ignore; registry clients ask for
// one). size < 0 means unknown, which serves the whole content too.
func ParseRange(header string, size int64) (first, last int64, ok bool, err error) {
	if header == "" || size < 0 {
		return 0, 0, false, nil
	}
	spec, found := strings.CutPrefix(header, "bytes=")
	if !found {
		return 0, 0, false, nil
	}
	if strings.Contains(spec, ",") {
		return 0, 0, false, nil
	}
	spec = strings.TrimSpace(spec)
	from, to, found := strings.Cut(spec, "-")
	if !found {
		return 0, 0, false, ErrRangeInvalid
	}
	if from == "" { // suffix: the last n bytes
		n, err := parseOffset(to)
		if err != nil || n == 0 || size == 0 {
			return 0, 0, false, ErrRangeInvalid
		}
		return max(size-n, 0), size - 1, true, nil
	}
	first, err = parseOffset(from)
	if err != nil || first >= size {
		return 0, 0, false, ErrRangeInvalid
	}
	last = size - 1
	if to != "" {
		l, err := parseOffset(to)
		if err != nil || l < first {
			return 0, 0, false, ErrRangeInvalid
		}
		last = min(l, size-1)
	}
	return first, last, true, nil
}

// parseOffset accepts only plain decimal digits: no sign, no spaces.
func parseOffset(s string) (int64, error) {
	if s == "" || strings.TrimLeft(s, "0123456789") != "" {
		return 0, ErrRangeInvalid
	}
	return strconv.ParseInt(s, 10, 64)
}
