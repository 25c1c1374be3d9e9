package config

import (
	"fmt"
	"math"
	"math/big"
	"strings"
)

// sizeUnits are the units ParseSize reads: IEC binary prefixes (KiB is
// 1024 bytes) and SI decimal ones (kB, or KB as often written, is 1000).
var sizeUnits = map[string]int64{
	"": 1, "B": 1,
	"KiB": 1 << 10, "MiB": 1 << 20, "GiB": 1 << 30, "TiB": 1 << 40, "PiB": 1 << 50, "EiB": 1 << 60,
	"kB": 1e3, "KB": 1e3, "MB": 1e6, "GB": 1e9, "TB": 1e12, "PB": 1e15, "EB": 1e18,
}

// iecUnits are the units FormatSize writes, smallest first.
var iecUnits = [...]string{"KiB", "MiB", "GiB", "TiB", "PiB", "EiB"}

// ParseSize parses a size in bytes: a number of bytes (1048576), or a
// number with an IEC unit (KiB, MiB, GiB, TiB, PiB, EiB: powers of 1024)
// or an SI one (kB or KB, MB, GB, TB, PB, EB: powers of 1000), with an
// optional space between: 50GiB, 1.5 GiB, 500MB. A number with a unit may
// have a fraction; what falls below one byte is dropped. Units are case
// sensitive: Mb and mb are refused rather than guessed to be MB.
//
// Its errors quote s but name no key; the caller prefixes one.
func ParseSize(s string) (int64, error) {
	number, negative := strings.CutPrefix(strings.TrimSpace(s), "-")
	whole, frac, unit, ok := splitSize(number)
	if !ok {
		return 0, fmt.Errorf("%q is not a size, e.g. 50GiB, 500MB or 1048576 (bytes)", s)
	}
	mult, ok := sizeUnits[unit]
	if !ok {
		return 0, fmt.Errorf("%q has an unknown unit %q; use KiB, MiB, GiB, TiB (powers of 1024) or kB, MB, GB, TB (powers of 1000)", s, unit)
	}
	if negative {
		return 0, fmt.Errorf("%q must not be negative", s)
	}
	if mult == 1 && frac != "" {
		return 0, fmt.Errorf("%q is a fraction of a byte; give a unit, e.g. 1.5GiB", s)
	}

	// whole.frac × mult, exactly: (whole·10^len(frac) + frac) × mult
	// ÷ 10^len(frac). Floating point would turn 0.1GiB into a byte less
	// or more, depending on the rounding.
	n, _ := new(big.Int).SetString(whole+frac, 10) // splitSize checked the digits
	n.Mul(n, big.NewInt(mult))
	n.Quo(n, new(big.Int).Exp(big.NewInt(10), big.NewInt(int64(len(frac))), nil))
	if !n.IsInt64() {
		return 0, fmt.Errorf("%q is too large", s)
	}
	return n.Int64(), nil
}

// splitSize splits "1.5 GiB" into "1", "5" and "GiB". The whole part is
// required; the fraction, when its point is there, too.
func splitSize(s string) (whole, frac, unit string, ok bool) {
	whole, rest := leadingDigits(s)
	if whole == "" {
		return "", "", "", false
	}
	if after, point := strings.CutPrefix(rest, "."); point {
		if frac, rest = leadingDigits(after); frac == "" {
			return "", "", "", false
		}
	}
	return whole, frac, strings.TrimSpace(rest), true
}

// leadingDigits splits s after its leading ASCII digits.
func leadingDigits(s string) (digits, rest string) {
	i := 0
	for i < len(s) && '0' <= s[i] && s[i] <= '9' {
		i++
	}
	return s[:i], s[i:]
}

// FormatSize writes n bytes for people, in the largest IEC unit it fills,
// with one decimal when it is not whole: "900 B", "512 MiB", "1.5 GiB".
// ParseSize reads it back to within 5% of n. Below 1 KiB, and for a
// negative n, it writes the exact number of bytes.
func FormatSize(n int64) string {
	if n < 1<<10 {
		return fmt.Sprintf("%d B", n)
	}
	i := 0
	for i+1 < len(iecUnits) && n >= 1<<(10*(i+2)) {
		i++
	}
	v := float64(n) / float64(int64(1)<<(10*(i+1)))
	r := math.Round(v*10) / 10
	switch {
	case r >= 1024 && i+1 < len(iecUnits):
		// 1023.96 KiB would round to 1024 KiB: say 1 MiB instead.
		i, r = i+1, 1
	case r*float64(int64(1)<<(10*(i+1))) >= math.MaxInt64:
		// Near the top of int64, v itself rounds up to 8 EiB, a size
		// ParseSize refuses as too large: write a tenth less.
		r = (math.Round(v*10) - 1) / 10
	}
	if r == math.Trunc(r) {
		return fmt.Sprintf("%.0f %s", r, iecUnits[i])
	}
	return fmt.Sprintf("%.1f %s", r, iecUnits[i])
}
