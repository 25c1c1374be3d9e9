package access

import (
	"net/http/httptest"
	"testing"
)

// Whatever the Authorization header, identify answers without panicking,
// and an identity it accepts has a name or is anonymous with no header.
func FuzzAuthorization(f *testing.F) {
	f.Add("Basic YWxpY2U6eA==")
	f.Add("Bearer a.b.c")
	f.Add("bearer ")
	f.Add("Basic !!!")
	f.Add("Digest x")
	g := fuzzGate(f)
	f.Fuzz(func(t *testing.T, header string) {
		r := httptest.NewRequest("GET", "/v2/", nil)
		r.Header["Authorization"] = []string{header}
		id, err := g.identify(r)
		if err == nil && header != "" && id.Anonymous() {
			t.Fatalf("%q: accepted as anonymous", header)
		}
	})
}

// Whatever the scope, grant answers without panicking, and grants only
// pull or push on a repository written with its upstream.
func FuzzScope(f *testing.F) {
	f.Add("repository:library/app:pull")
	f.Add("repository:docker.io/library/app:pull,push,*")
	f.Add("registry:catalog:*")
	f.Add("repository::pull")
	f.Add("repository:a:b:c")
	g := fuzzGate(f)
	f.Fuzz(func(t *testing.T, scope string) {
		a, ok := g.grant(anyone, scope)
		if !ok {
			return
		}
		if a.Type != "repository" || len(a.Actions) == 0 {
			t.Fatalf("%q: granted %+v", scope, a)
		}
		for _, action := range a.Actions {
			if action != "pull" {
				t.Fatalf("%q: granted %q, which no rule gives", scope, action)
			}
		}
	})
}
