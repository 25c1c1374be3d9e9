package access

import (
	"encoding/json"
	"net/http"
	"strings"
	"time"

	"github.com/entrepot/entrepot/internal/auth"
)

// tokenAnswer is the token endpoint's answer, with both names clients
// read the token by.
type tokenAnswer struct {
	Token       string `json:"token"`
	AccessToken string `json:"access_token"`
	ExpiresIn   int    `json:"expires_in"`
	IssuedAt    string `json:"issued_at"`
}

// maxScopes bounds the scopes of one token request.
const maxScopes = 32

// ServeToken is the token endpoint (GET /token, and POST with the OAuth2
// password grant, as containerd sends it). The client shows its
// credentials with basic auth (or the form), or none for an anonymous
// token; it gets a token for the scopes it asked that the rules allow it,
// and no more: a scope refused is left out of the token, as the Docker
// token specification has it, and the registry then refuses the pull.
func (g *Gate) ServeToken(w http.ResponseWriter, r *http.Request) {
	var id auth.Identity
	var err error
	var scopes []string
	switch r.Method {
	case http.MethodGet:
		id, err = g.identify(r)
		scopes = r.URL.Query()["scope"]
	case http.MethodPost:
		r.Body = http.MaxBytesReader(w, r.Body, 64<<10)
		if err := r.ParseForm(); err != nil {
			tokenError(w, http.StatusBadRequest, "invalid_request", "the form does not parse")
			return
		}
		if gt := r.PostForm.Get("grant_type"); gt != "password" {
			tokenError(w, http.StatusBadRequest, "unsupported_grant_type", "only the password grant is supported")
			return
		}
		id, err = g.creds.Password(r.PostForm.Get("username"), r.PostForm.Get("password"))
		scopes = r.PostForm["scope"]
	default:
		w.Header().Set("Allow", "GET, POST")
		tokenError(w, http.StatusMethodNotAllowed, "invalid_request", "GET or POST")
		return
	}
	if err != nil {
		w.Header().Set("WWW-Authenticate", `Basic realm="`+Service+`"`)
		tokenError(w, http.StatusUnauthorized, "invalid_client", "authentication failed")
		return
	}
	var access []auth.Access
	n := 0
	for _, s := range scopes {
		for _, scope := range strings.Fields(s) {
			if n++; n > maxScopes {
				tokenError(w, http.StatusBadRequest, "invalid_scope", "too many scopes")
				return
			}
			if a, ok := g.grant(id, scope); ok {
				access = append(access, a)
			}
		}
	}
	token, exp, err := g.issuer.Issue(id, access)
	if err != nil {
		tokenError(w, http.StatusInternalServerError, "server_error", "signing the token failed")
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	json.NewEncoder(w).Encode(tokenAnswer{Token: token, AccessToken: token,
		ExpiresIn: int(time.Until(exp).Round(time.Second).Seconds()), IssuedAt: time.Now().UTC().Format(time.RFC3339)})
}

// grant is what of one scope ("repository:NAME:pull,push") the rules
// allow id: the repository written with its upstream, whatever route the
// client names it by, and the actions allowed.
func (g *Gate) grant(id auth.Identity, scope string) (auth.Access, bool) {
	typ, rest, ok := strings.Cut(scope, ":")
	i := strings.LastIndexByte(rest, ':')
	if !ok || typ != "repository" || i <= 0 {
		return auth.Access{}, false
	}
	name, actions := rest[:i], rest[i+1:]
	rt, err := g.routes.Parse("/v2/"+name+"/tags/list", "")
	if err != nil {
		return auth.Access{}, false
	}
	repo := rt.Source.Name() + "/" + rt.Repo
	a := auth.Access{Type: "repository", Name: repo}
	for _, action := range strings.Split(actions, ",") {
		if (action == auth.Pull || action == auth.Push) && g.rules.Allow(id, repo, action).Allowed {
			a.Actions = append(a.Actions, action)
		}
	}
	return a, len(a.Actions) > 0
}

func tokenError(w http.ResponseWriter, status int, code, msg string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(map[string]string{"error": code, "error_description": msg})
}
