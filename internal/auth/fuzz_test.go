package auth

import (
	"strings"
	"testing"
	"time"
)

func FuzzParseHTPasswd(f *testing.F) {
	f.Add("alice:$2y$05$abcdefghijklmnopqrstuu5lJ0x5PmlvDSqI5Qb6fq1J7GEYp7kaG\n")
	f.Add("# comment\n\nbob:$apr1$x$y\n")
	f.Add("a:b:c\n:\n")
	f.Fuzz(func(t *testing.T, s string) {
		users, err := ParseHTPasswd(strings.NewReader(s))
		if err != nil {
			return
		}
		for user, hash := range users {
			if user == "" || strings.Contains(user, ":") || len(hash) == 0 {
				t.Fatalf("accepted user %q hash %q", user, hash)
			}
		}
	})
}

func FuzzParseTokens(f *testing.F) {
	f.Add("ci:0123456789abcdef0123")
	f.Add("a:short,b:0123456789abcdef0123\n# c\n")
	f.Fuzz(func(t *testing.T, s string) {
		tokens, err := ParseTokens(s)
		if err != nil {
			return
		}
		for token, name := range tokens {
			if len(token) < 16 || name == "" {
				t.Fatalf("accepted %q for %q", token, name)
			}
		}
	})
}

// No input verifies but what the issuer signed.
func FuzzVerify(f *testing.F) {
	is := NewIssuer("entrepot", []byte("a key of thirty-two bytes or more"), time.Minute)
	good, _, _ := is.Issue(Identity{Name: "alice", Via: "basic"}, []Access{{Type: "repository", Name: "docker.io/library/app", Actions: []string{"pull"}}})
	f.Add(good)
	f.Add("eyJhbGciOiJub25lIn0.eyJzdWIiOiJhbGljZSJ9.")
	f.Add("a.b.c")
	f.Fuzz(func(t *testing.T, s string) {
		id, err := is.Verify(s)
		if err == nil && s != good {
			// Another encoding of the same signed token is still ours:
			// check it names what the good one does.
			if id.Name != "alice" {
				t.Fatalf("verified a token the issuer did not sign: %q -> %+v", s, id)
			}
		}
	})
}
