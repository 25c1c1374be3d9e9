// Package access puts client authentication and the access rules in
// front of the registry API: a middleware that knows who a request comes
// from (basic auth, a static token, or a token this cache signed) and
// whether the rules let it pull the repository it names, and the token
// endpoint of the Docker token flow, which docker login, containerd,
// podman, crane and skopeo use as with any registry.
package access

import (
	"encoding/base64"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strings"

	"github.com/entrepot/entrepot/internal/auth"
	"github.com/entrepot/entrepot/internal/config"
	"github.com/entrepot/entrepot/internal/httpx"
	"github.com/entrepot/entrepot/internal/oci"
	"github.com/entrepot/entrepot/internal/route"
)

// Service is the name the tokens are issued for and by.
const Service = "entrepot"

// Gate authenticates and authorizes the registry API's requests.
type Gate struct {
	creds  *auth.Credentials
	issuer *auth.Issuer
	rules  *auth.Rules
	routes *route.Table
	realm  string // auth.realm; "" means the request's own host
	// open is whether anonymous clients may pull anything at all: then
	// paths that route nowhere answer them with their error.
	open bool
	log  *slog.Logger
}

// New returns the gate of an auth section and access list, over the
// routes of the registry API.
func New(a config.Auth, grants []auth.Grant, routes *route.Table, log *slog.Logger) (*Gate, error) {
	creds, err := auth.NewCredentials(a.HTPasswd, a.Tokens)
	if err != nil {
		return nil, fmt.Errorf("auth.htpasswd: %w", err)
	}
	g := &Gate{
		creds:  creds,
		issuer: auth.NewIssuer(Service, []byte(a.TokenKey.Reveal()), a.TokenTTL),
		rules:  auth.NewRules(grants, a.Groups, a.Anonymous),
		routes: routes,
		realm:  a.Realm,
		open:   len(a.Anonymous) > 0,
		log:    log,
	}
	for _, gr := range grants {
		for _, u := range gr.Users {
			g.open = g.open || u == "anonymous"
		}
	}
	return g, nil
}

// identify tells who sent r: an Identity, the anonymous one when r has no
// credentials, or an error for credentials that match nothing.
func (g *Gate) identify(r *http.Request) (auth.Identity, error) {
	h := r.Header.Get("Authorization")
	if h == "" {
		return auth.Identity{}, nil
	}
	scheme, value, _ := strings.Cut(h, " ")
	value = strings.TrimSpace(value)
	switch {
	case strings.EqualFold(scheme, "Basic"):
		user, password, ok := decodeBasic(value)
		if !ok {
			return auth.Identity{}, errors.New("malformed basic credentials")
		}
		return g.creds.Password(user, password)
	case strings.EqualFold(scheme, "Bearer"):
		if id, err := g.issuer.Verify(value); err == nil {
			return id, nil
		}
		if name, ok := g.creds.Token(value); ok {
			return auth.Identity{Name: name, Via: "token"}, nil
		}
		return auth.Identity{}, auth.ErrBadToken
	}
	return auth.Identity{}, errors.New("unsupported authorization scheme")
}

func decodeBasic(s string) (user, password string, ok bool) {
	raw, err := base64.StdEncoding.DecodeString(s)
	if err != nil {
		return "", "", false
	}
	return strings.Cut(string(raw), ":")
}

// Middleware refuses what the rules do not allow: 401 with the token
// flow's challenge when credentials are missing, wrong, or a token lacks
// the scope; 403 DENIED, naming the rule, when an authenticated client may
// not. HEAD is refused as GET is, on every route.
func (g *Gate) Middleware(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		id, err := g.identify(r)
		if err != nil {
			g.challenge(w, r, "", "invalid_token", "authentication failed: "+err.Error())
			return
		}
		info := httpx.InfoOf(r.Context())
		info.Client = id.Name
		rt, err := g.routes.Parse(r.URL.Path, r.URL.Query().Get("ns"))
		if err != nil || rt.Kind == route.Base {
			// /v2/ challenges every anonymous client, as Docker Hub's
			// does: that is how clients learn that the registry takes
			// tokens (docker and skopeo authenticate no later request,
			// a push included, when the ping answered 200), and anonymous
			// ones then pull with an anonymous token. Paths that route
			// nowhere are answered with their error to anyone signed in,
			// and to anonymous clients when some content is theirs.
			base := err == nil
			if id.Anonymous() && (base || !g.open) {
				g.challenge(w, r, "", "", "authentication required")
				return
			}
			h.ServeHTTP(w, r)
			return
		}
		describe(info, rt)
		action := auth.Pull
		if (r.Method != http.MethodGet && r.Method != http.MethodHead) || rt.Kind == route.Upload {
			action = auth.Push
		}
		repo := rt.Source.Name() + "/" + rt.Repo
		d := g.rules.Allow(id, repo, action)
		info.Rule = d.Rule
		switch {
		case d.Allowed:
			h.ServeHTTP(w, r)
		case id.Anonymous() || id.Via == "bearer":
			// The client may come back with credentials, or a token with
			// this scope.
			code := ""
			if id.Via == "bearer" {
				code = "insufficient_scope"
			}
			g.challenge(w, r, "repository:"+repo+":"+action, code, d.Rule)
		default:
			httpx.Errorf(http.StatusForbidden, oci.CodeDenied, "%s may not %s %s: %s", id.Name, action, repo, d.Rule).Write(w, r)
		}
	})
}

// Admin tells whether r comes from a user the rules grant admin, with
// basic credentials or a static token: the admin API lets such users in.
func (g *Gate) Admin(r *http.Request) bool {
	id, err := g.identify(r)
	return err == nil && g.rules.Admin(id)
}

// challenge answers 401 with the Bearer challenge of the token flow.
func (g *Gate) challenge(w http.ResponseWriter, r *http.Request, scope, code, msg string) {
	c := fmt.Sprintf(`Bearer realm=%q,service=%q`, g.realmOf(r), Service)
	if scope != "" {
		c += fmt.Sprintf(`,scope=%q`, scope)
	}
	if code != "" {
		c += fmt.Sprintf(`,error=%q`, code)
	}
	w.Header().Set("WWW-Authenticate", c)
	httpx.Errorf(http.StatusUnauthorized, oci.CodeUnauthorized, "%s", msg).Write(w, r)
}

// realmOf is the token endpoint's URL: auth.realm, or /token on the host
// and scheme the client used.
func (g *Gate) realmOf(r *http.Request) string {
	if g.realm != "" {
		return g.realm
	}
	scheme := "http"
	if r.TLS != nil {
		scheme = "https"
	}
	return scheme + "://" + r.Host + "/token"
}

// describe fills in what a refused request asked for, for the access log,
// the metrics and the audit trail (the registry handler does it for the
// others).
func describe(info *httpx.Info, rt route.Route) {
	info.Upstream, info.Repo, info.Ref = rt.Source.Name(), rt.Repo, rt.Tag
	if rt.Digest != "" {
		info.Ref = rt.Digest.String()
	}
	info.Kind = kindNames[rt.Kind]
}

var kindNames = map[route.Kind]string{route.Manifest: "manifest", route.Blob: "blob", route.Tags: "tags", route.Referrers: "referrers"}
