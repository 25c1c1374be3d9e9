package config

import (
	"math"
	"strings"
	"testing"
)

func TestParseSize(t *testing.T) {
	tests := []struct {
		in   string
		want int64
	}{
		{"0", 0},
		{"1048576", 1048576},
		{"007", 7},
		{"1B", 1},
		{"1 B", 1},
		{"1KiB", 1 << 10},
		{"512MiB", 512 << 20},
		{"50GiB", 50 << 30},
		{"50 GiB", 50 << 30},
		{" 2TiB ", 2 << 40},
		{"1PiB", 1 << 50},
		{"7EiB", 7 << 60},
		{"1.5GiB", 1610612736},
		{"1.5 GiB", 1610612736},
		{"0.5MiB", 512 << 10},
		{"0GiB", 0},
		{"0.1KiB", 102},              // 102.4: the fraction of a byte is dropped
		{"1.0000000001GiB", 1 << 30}, // 1<<30 + 0.107
		{"1kB", 1000},
		{"1KB", 1000},
		{"500MB", 500e6},
		{"2GB", 2e9},
		{"3TB", 3e12},
		{"1.25TB", 1.25e12},
		{"1EB", 1e18},
		{"9223372036854775807", math.MaxInt64},
	}
	for _, tt := range tests {
		got, err := ParseSize(tt.in)
		if err != nil || got != tt.want {
			t.Errorf("ParseSize(%q) = %d, %v; want %d", tt.in, got, err, tt.want)
		}
	}
}

func TestParseSizeErrors(t *testing.T) {
	tests := []struct{ in, want string }{
		{"", `"" is not a size, e.g. 50GiB, 500MB or 1048576 (bytes)`},
		{" ", `" " is not a size`},
		{"GiB", `"GiB" is not a size`},
		{"1.GiB", `"1.GiB" is not a size`},
		{".5GiB", `".5GiB" is not a size`},
		{"+1GiB", `"+1GiB" is not a size`},
		{"-", `"-" is not a size`},
		{"--1", `"--1" is not a size`},
		{"-1", `"-1" must not be negative`},
		{"-1GiB", `"-1GiB" must not be negative`},
		{"-0", `"-0" must not be negative`},
		{"1.5", `"1.5" is a fraction of a byte; give a unit, e.g. 1.5GiB`},
		{"1.5B", `"1.5B" is a fraction of a byte`},
		{"50Gb", `"50Gb" has an unknown unit "Gb"; use KiB, MiB, GiB, TiB (powers of 1024) or kB, MB, GB, TB (powers of 1000)`},
		{"50gib", `"50gib" has an unknown unit "gib"`},
		{"50 G", `"50 G" has an unknown unit "G"`},
		{"1e3", `"1e3" has an unknown unit "e3"`},
		{"0x10", `"0x10" has an unknown unit "x10"`},
		{"1 2", `"1 2" has an unknown unit "2"`},
		{"1GiB!", `"1GiB!" has an unknown unit "GiB!"`},
		{"NaN", `"NaN" is not a size`},
		{"99999999999TiB", `"99999999999TiB" is too large`},
		{"9223372036854775808", `"9223372036854775808" is too large`},
		{"8EiB", `"8EiB" is too large`},
		{"100000000000000000000000000000000000000", "is too large"},
	}
	for _, tt := range tests {
		got, err := ParseSize(tt.in)
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("ParseSize(%q) = %d, %v; want an error containing %q", tt.in, got, err, tt.want)
		}
	}
}

func TestFormatSize(t *testing.T) {
	tests := []struct {
		in   int64
		want string
	}{
		{0, "0 B"},
		{900, "900 B"},
		{1023, "1023 B"},
		{1024, "1 KiB"},
		{1536, "1.5 KiB"},
		{1126, "1.1 KiB"},
		{512 << 20, "512 MiB"},
		{1610612736, "1.5 GiB"},
		{50 << 30, "50 GiB"},
		{1 << 40, "1 TiB"},
		{1<<40 - 1<<30, "1023 GiB"},
		{1<<20 - 1, "1 MiB"}, // 1023.999 KiB rounds up into the next unit
		{1 << 60, "1 EiB"},
		{math.MaxInt64, "7.9 EiB"}, // not 8 EiB, which is past int64
		{-1, "-1 B"},
	}
	for _, tt := range tests {
		if got := FormatSize(tt.in); got != tt.want {
			t.Errorf("FormatSize(%d) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

// FuzzParseSize checks that ParseSize never panics nor returns a negative
// size, and that what FormatSize writes reads back to within 5%.
func FuzzParseSize(f *testing.F) {
	for _, s := range []string{
		"0", "900", "1048576", "50GiB", "1.5 GiB", "0.95KiB", "1.04999KiB", "1023.96KiB",
		"500MB", "99999999999TiB", "9223372036854775807", "7.99EiB", "-1", "1.5", "50Gb", "", " 1 TiB ",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		n, err := ParseSize(s)
		if err != nil {
			return
		}
		if n < 0 {
			t.Fatalf("ParseSize(%q) = %d, negative", s, n)
		}
		out := FormatSize(n)
		m, err := ParseSize(out)
		if err != nil {
			t.Fatalf("ParseSize(FormatSize(%d) = %q): %v", n, out, err)
		}
		if diff := math.Abs(float64(m) - float64(n)); diff > 0.05*float64(n)+1 {
			t.Fatalf("ParseSize(FormatSize(%d) = %q) = %d, off by %.1f%%", n, out, m, 100*diff/float64(n))
		}
	})
}
