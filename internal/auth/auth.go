// Package auth is who a client is and what it may do: users from an
// htpasswd file (bcrypt), static tokens, the registry tokens the cache
// signs itself (the Docker token flow), and the access rules that grant
// actions on repositories. It knows no HTTP routes: the middleware and the
// token endpoint are package access's.
package auth

import (
	"slices"
	"strconv"
	"strings"

	"github.com/entrepot/entrepot/internal/oci"
)

// Actions a rule grants on repositories.
const (
	Pull  = "pull"
	Push  = "push"
	Admin = "admin"
)

// Identity is an authenticated client, or the anonymous one.
type Identity struct {
	// Name is the user's or the static token's name; "" for anonymous.
	Name string
	// Via is how it was shown: basic, token (a static token), bearer (a
	// token this cache signed), or "" for anonymous.
	Via string
	// Access is, for a signed token, what it grants: the client may do no
	// more than this, whatever the rules say now.
	Access []Access
}

// Anonymous tells whether no credential was shown.
func (id Identity) Anonymous() bool { return id.Name == "" }

// Access is one repository's actions in a signed token, as the Docker
// token specification writes it.
type Access struct {
	Type    string   `json:"type"`
	Name    string   `json:"name"`
	Actions []string `json:"actions"`
}

// Grant is one access rule: the users it applies to ("*" is any
// authenticated user, "anonymous" a client without credentials,
// "group:NAME" the members of a group), the repository patterns
// (package oci's, starting with the upstream's name) and the actions.
type Grant struct {
	Users, Repos, Actions []string
	// Index is the rule's place in the access list, for messages.
	Index int
}

// Rules decide who may do what.
type Rules struct {
	grants []Grant
	groups map[string][]string
	// anonymous are the patterns anonymous clients may pull.
	anonymous []string
}

// NewRules returns the rules of an access list. With no grant, every
// authenticated user may pull everything and nobody may push. Anonymous
// clients may pull what the anonymous patterns name, and what a grant to
// "anonymous" gives them.
func NewRules(grants []Grant, groups map[string][]string, anonymous []string) *Rules {
	return &Rules{grants: grants, groups: groups, anonymous: anonymous}
}

// Decision is the outcome of a check, with the rule that decided it, for
// the answer's message and the audit log.
type Decision struct {
	Allowed bool
	Rule    string
}

// Allow decides whether id may do action on repo, a repository written
// with its upstream (docker.io/library/nginx).
func (r *Rules) Allow(id Identity, repo, action string) Decision {
	if id.Via == "bearer" && !granted(id.Access, repo, action) {
		return Decision{Rule: "the token does not grant " + action + " on " + repo}
	}
	if id.Anonymous() && action == Pull {
		for _, p := range r.anonymous {
			if oci.MatchPattern(p, repo) {
				return Decision{Allowed: true, Rule: "auth.anonymous " + p}
			}
		}
	}
	if len(r.grants) == 0 {
		if !id.Anonymous() && action == Pull {
			return Decision{Allowed: true, Rule: "default: authenticated users pull"}
		}
		return Decision{Rule: "no access list: only authenticated users pull"}
	}
	for _, g := range r.grants {
		if slices.Contains(g.Actions, action) && r.applies(g, id) && slices.ContainsFunc(g.Repos, func(p string) bool { return oci.MatchPattern(p, repo) }) {
			return Decision{Allowed: true, Rule: ruleName(g.Index)}
		}
	}
	who := "anonymous"
	if !id.Anonymous() {
		who = id.Name
	}
	return Decision{Rule: "no access rule grants " + who + " " + action + " on " + repo}
}

func ruleName(i int) string { return "access[" + strconv.Itoa(i) + "]" }

// Admin tells whether a rule grants id the admin action: the admin API,
// as its token does. Anonymous clients never get it.
func (r *Rules) Admin(id Identity) bool {
	if id.Anonymous() || id.Via == "bearer" {
		return false // registry tokens are for the registry API
	}
	for _, g := range r.grants {
		if slices.Contains(g.Actions, Admin) && r.applies(g, id) {
			return true
		}
	}
	return false
}

// applies tells whether a grant names id.
func (r *Rules) applies(g Grant, id Identity) bool {
	for _, u := range g.Users {
		switch {
		case u == "anonymous":
			if id.Anonymous() {
				return true
			}
		case id.Anonymous():
		case u == "*" || u == id.Name:
			return true
		case strings.HasPrefix(u, "group:"):
			if slices.Contains(r.groups[strings.TrimPrefix(u, "group:")], id.Name) {
				return true
			}
		}
	}
	return false
}

// granted tells whether a token's access includes action on repo.
func granted(access []Access, repo, action string) bool {
	for _, a := range access {
		if a.Type == "repository" && a.Name == repo && slices.Contains(a.Actions, action) {
			return true
		}
	}
	return false
}
