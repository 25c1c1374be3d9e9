package config

import (
	"errors"
	"fmt"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/entrepot/entrepot/internal/auth"
	"github.com/entrepot/entrepot/internal/oci"
)

// Auth is client authentication (the auth section). It is off, and every
// client may pull, unless a htpasswd file or static tokens are set.
type Auth struct {
	// HTPasswd is a file of bcrypt users (auth.htpasswd), re-read when
	// it changes.
	HTPasswd string
	// Tokens are static tokens, token -> name, from auth.tokens_file or
	// the variable auth.tokens_env ("name:token" pairs).
	Tokens map[string]string
	// Anonymous are patterns (or upstream names) that clients without
	// credentials may pull (auth.anonymous).
	Anonymous []string
	// Groups name sets of users for the access rules (auth.groups).
	Groups map[string][]string
	// TokenTTL is how long the registry tokens of the token flow hold
	// (auth.token_ttl). Default 5m.
	TokenTTL time.Duration
	// TokenKey signs the token flow's tokens (auth.token_key_file or
	// auth.token_key_env, 32 bytes at least): replicas that share it honour
	// each other's tokens. Empty: a random key, for this process only.
	TokenKey Secret
	// Realm is the token endpoint's URL sent in challenges (auth.realm),
	// for a cache behind a proxy that changes its address; default: the
	// request's own scheme and host, with /token.
	Realm string
}

// Enabled tells whether clients authenticate.
func (a Auth) Enabled() bool { return a.HTPasswd != "" || len(a.Tokens) > 0 }

// fileAuth is the auth section.
type fileAuth struct {
	HTPasswd   string              `yaml:"htpasswd"`
	TokensFile string              `yaml:"tokens_file"`
	TokensEnv  string              `yaml:"tokens_env"`
	Anonymous  []string            `yaml:"anonymous"`
	Groups     map[string][]string `yaml:"groups"`
	TokenTTL   *string             `yaml:"token_ttl"`
	KeyFile    string              `yaml:"token_key_file"`
	KeyEnv     string              `yaml:"token_key_env"`
	Realm      string              `yaml:"realm"`
}

// fileGrant is one entry of the access list.
type fileGrant struct {
	Users   []string `yaml:"users"`
	Repos   []string `yaml:"repos"`
	Actions []string `yaml:"actions"`
}

// apply validates the auth section and the access list against the
// upstreams, and sets them on cfg.
func (fa *fileAuth) apply(cfg *Config, access []fileGrant, getenv func(string) string) error {
	a := &cfg.Auth
	if fa.HTPasswd != "" {
		f, err := os.Open(fa.HTPasswd)
		if err != nil {
			return fmt.Errorf("auth.htpasswd: %w", err)
		}
		_, err = auth.ParseHTPasswd(f)
		f.Close()
		if err != nil {
			return fmt.Errorf("auth.htpasswd: %s: %w", fa.HTPasswd, err)
		}
		a.HTPasswd = fa.HTPasswd
	}
	if fa.TokensFile != "" || fa.TokensEnv != "" {
		raw, err := readSecret("auth", "tokens", fa.TokensEnv, fa.TokensFile, getenv)
		if err != nil {
			return err
		}
		key := "auth.tokens_file"
		if fa.TokensEnv != "" {
			key = "auth.tokens_env"
		}
		if a.Tokens, err = auth.ParseTokens(raw.Reveal()); err != nil {
			return fmt.Errorf("%s: %w", key, err)
		}
	}
	if fa.TokenTTL != nil {
		d, err := time.ParseDuration(*fa.TokenTTL)
		if err != nil || d < 10*time.Second || d > 24*time.Hour {
			return fmt.Errorf("auth.token_ttl: %q must be a duration from 10s to 24h, e.g. 5m", *fa.TokenTTL)
		}
		a.TokenTTL = d
	}
	if fa.KeyFile != "" || fa.KeyEnv != "" {
		key, err := readSecret("auth", "token_key", fa.KeyEnv, fa.KeyFile, getenv)
		if err != nil {
			return err
		}
		if len(key.Reveal()) < 32 {
			return errors.New("auth.token_key: shorter than 32 bytes")
		}
		a.TokenKey = key
	}
	if fa.Realm != "" {
		if !strings.HasPrefix(fa.Realm, "https://") && !strings.HasPrefix(fa.Realm, "http://") {
			return fmt.Errorf("auth.realm: %q must be an http or https URL", fa.Realm)
		}
		a.Realm = fa.Realm
	}
	upstreams := map[string]bool{}
	for _, u := range cfg.Upstreams {
		upstreams[u.Name] = true
	}
	if len(cfg.Derive) > 0 {
		upstreams[DerivedName] = true // derived/<name>, served like an upstream's
	}
	for i, p := range fa.Anonymous {
		if upstreams[p] {
			p += "/*" // an upstream's name: all of it
		}
		if err := checkRepoPattern(p, upstreams); err != nil {
			return fmt.Errorf("auth.anonymous[%d]: %w", i, err)
		}
		a.Anonymous = append(a.Anonymous, p)
	}
	for g, members := range fa.Groups {
		if g == "" || strings.ContainsAny(g, ": ") {
			return fmt.Errorf("auth.groups: %q is not a group name", g)
		}
		if len(members) == 0 {
			return fmt.Errorf("auth.groups.%s: lists no user", g)
		}
	}
	a.Groups = fa.Groups
	for i, g := range access {
		key := fmt.Sprintf("access[%d]", i)
		grant, err := g.grant(i, a.Groups, upstreams)
		if err != nil {
			return fmt.Errorf("%s.%w", key, err)
		}
		cfg.Access = append(cfg.Access, grant)
	}
	if (len(cfg.Access) > 0 || len(a.Anonymous) > 0 || len(a.Groups) > 0) && !a.Enabled() {
		return errors.New("access, auth.anonymous and auth.groups need authentication: set auth.htpasswd, auth.tokens_file or auth.tokens_env")
	}
	return nil
}

func (g fileGrant) grant(i int, groups map[string][]string, upstreams map[string]bool) (auth.Grant, error) {
	if len(g.Users) == 0 || len(g.Repos) == 0 || len(g.Actions) == 0 {
		return auth.Grant{}, errors.New("users, repos, actions: each must list one at least")
	}
	for j, u := range g.Users {
		if name, ok := strings.CutPrefix(u, "group:"); ok && groups[name] == nil {
			return auth.Grant{}, fmt.Errorf("users[%d]: no group %q under auth.groups", j, name)
		}
		if u == "" {
			return auth.Grant{}, fmt.Errorf("users[%d]: empty", j)
		}
	}
	for j, p := range g.Repos {
		if err := checkRepoPattern(p, upstreams); err != nil {
			return auth.Grant{}, fmt.Errorf("repos[%d]: %w", j, err)
		}
	}
	for j, a := range g.Actions {
		if !slices.Contains([]string{auth.Pull, auth.Push, auth.Admin}, a) {
			return auth.Grant{}, fmt.Errorf("actions[%d]: %q is not pull, push or admin", j, a)
		}
	}
	return auth.Grant{Users: g.Users, Repos: g.Repos, Actions: g.Actions, Index: i}, nil
}

// checkRepoPattern checks a repository pattern: package oci's, starting
// with an upstream's name (or *, for all of them).
func checkRepoPattern(p string, upstreams map[string]bool) error {
	if p == "*" || p == "**" {
		return nil
	}
	if err := oci.CheckPattern(p); err != nil {
		return err
	}
	if host, _, _ := strings.Cut(p, "/"); !upstreams[host] && !strings.Contains(host, "*") {
		return fmt.Errorf("pattern %q: %q is not an upstream", p, host)
	}
	return nil
}
