package upstream

import (
	"reflect"
	"strings"
	"testing"
)

func TestParseChallenges(t *testing.T) {
	type p = map[string]string
	tests := []struct {
		name   string
		values []string
		want   []challenge
	}{
		{
			name:   "docker hub",
			values: []string{`Bearer realm="https://auth.docker.io/token",service="registry.docker.io",scope="repository:library/nginx:pull"`},
			want: []challenge{{"bearer", p{
				"realm": "https://auth.docker.io/token", "service": "registry.docker.io", "scope": "repository:library/nginx:pull"}}},
		},
		{
			name:   "commas inside quotes",
			values: []string{`Bearer realm="https://a/token?x=1,2",scope="repository:a:pull,push"`},
			want:   []challenge{{"bearer", p{"realm": "https://a/token?x=1,2", "scope": "repository:a:pull,push"}}},
		},
		{
			name:   "escapes in quotes",
			values: []string{`Bearer realm="a\"b\\c"`},
			want:   []challenge{{"bearer", p{"realm": `a"b\c`}}},
		},
		{
			name:   "case and spaces",
			values: []string{`BEARER  Realm = "x" ,  Service=y`},
			want:   []challenge{{"bearer", p{"realm": "x", "service": "y"}}},
		},
		{
			name:   "two challenges in one value",
			values: []string{`Basic realm="Registry, private", Bearer realm="https://t",service="s"`},
			want:   []challenge{{"basic", p{"realm": "Registry, private"}}, {"bearer", p{"realm": "https://t", "service": "s"}}},
		},
		{
			name:   "two values",
			values: []string{`Basic realm="r"`, `Bearer realm="https://t"`},
			want:   []challenge{{"basic", p{"realm": "r"}}, {"bearer", p{"realm": "https://t"}}},
		},
		{
			name:   "token68 then a challenge",
			values: []string{`Negotiate abc==, Basic realm="x"`},
			want:   []challenge{{"negotiate", p{"abc": ""}}, {"basic", p{"realm": "x"}}},
		},
		{
			name:   "scheme without params",
			values: []string{`Basic`},
			want:   []challenge{{"basic", p{}}},
		},
		{
			name:   "first of a repeated param wins",
			values: []string{`Bearer realm="https://good",realm="https://evil"`},
			want:   []challenge{{"bearer", p{"realm": "https://good"}}},
		},
		{
			name:   "unterminated quote",
			values: []string{`Bearer realm="https://t`},
			want:   []challenge{{"bearer", p{"realm": "https://t"}}},
		},
		{
			name:   "garbage",
			values: []string{`"=,, =`, ``},
			want:   nil,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := parseChallenges(tt.values)
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("parseChallenges(%q)\n got %+v\nwant %+v", tt.values, got, tt.want)
			}
		})
	}
}

// quoteParam renders s as an RFC 9110 quoted-string.
func quoteParam(s string) string {
	return `"` + strings.NewReplacer(`\`, `\\`, `"`, `\"`).Replace(s) + `"`
}

func FuzzParseChallenge(f *testing.F) {
	f.Add(`Bearer realm="https://auth.docker.io/token",service="registry.docker.io",scope="repository:library/nginx:pull"`, "https://auth.docker.io/token")
	f.Add(`Basic realm="a, b", Bearer realm=x`, `a"b\c,d`)
	f.Add(`Negotiate abc==, , "`, "")
	f.Add(`Bearer realm="\`, "\x00\xff")
	f.Fuzz(func(t *testing.T, header, value string) {
		// Any input: no panic, and what comes out is well formed.
		for _, ch := range parseChallengeValue(header) {
			if ch.scheme == "" || ch.scheme != strings.ToLower(ch.scheme) {
				t.Fatalf("%q: bad scheme %q", header, ch.scheme)
			}
			for i := range len(ch.scheme) {
				if !isTokenChar(ch.scheme[i]) {
					t.Fatalf("%q: scheme %q is not a token", header, ch.scheme)
				}
			}
			for name := range ch.params {
				if name == "" || name != strings.ToLower(name) {
					t.Fatalf("%q: bad param name %q", header, name)
				}
			}
		}

		// Any value survives quoting, among other params and challenges.
		h := `Basic realm="x", Bearer service=svc, realm=` + quoteParam(value) + `,scope="s"`
		got := parseChallengeValue(h)
		bearer, ok := findChallenge(got, "bearer")
		if len(got) != 2 || !ok || bearer.params["realm"] != value || bearer.params["service"] != "svc" || bearer.params["scope"] != "s" {
			t.Fatalf("%q: parsed %+v, want realm %q", h, got, value)
		}
	})
}
