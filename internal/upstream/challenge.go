package upstream

import "strings"

// challenge is one authentication challenge of a WWW-Authenticate header,
// e.g. Bearer realm="https://auth.docker.io/token",service="registry.docker.io".
type challenge struct {
	scheme string            // lower case: "bearer", "basic"
	params map[string]string // names in lower case, values unquoted
}

// findChallenge returns the first challenge with the (lower-case) scheme.
func findChallenge(cs []challenge, scheme string) (challenge, bool) {
	for _, c := range cs {
		if c.scheme == scheme {
			return c, true
		}
	}
	return challenge{}, false
}

// parseChallenges parses the values of WWW-Authenticate headers following
// RFC 9110 section 11.6.1: each value holds one or more comma-separated
// challenges, each a scheme followed by comma-separated name=value
// parameters whose values are tokens or quoted strings (which may contain
// commas and backslash escapes). It is lenient: malformed parts are skipped,
// and for a repeated parameter the first value wins.
func parseChallenges(values []string) []challenge {
	var out []challenge
	for _, v := range values {
		out = append(out, parseChallengeValue(v)...)
	}
	return out
}

func parseChallengeValue(s string) []challenge {
	p := challengeParser{s: s}
	var out []challenge
	for {
		p.skip(" \t,")
		if p.done() {
			return out
		}
		scheme := p.token()
		if scheme == "" {
			// Not a scheme: skip to the next comma and try again.
			p.skipPast(',')
			continue
		}
		ch := challenge{scheme: strings.ToLower(scheme), params: map[string]string{}}
		p.params(ch.params)
		out = append(out, ch)
	}
}

// challengeParser is a cursor over one header value.
type challengeParser struct {
	s string
	i int
}

func (p *challengeParser) done() bool { return p.i >= len(p.s) }

func (p *challengeParser) skip(chars string) {
	for !p.done() && strings.IndexByte(chars, p.s[p.i]) >= 0 {
		p.i++
	}
}

func (p *challengeParser) skipPast(c byte) {
	for !p.done() && p.s[p.i] != c {
		p.i++
	}
	if !p.done() {
		p.i++
	}
}

// token consumes an RFC 9110 token (possibly empty).
func (p *challengeParser) token() string {
	start := p.i
	for !p.done() && isTokenChar(p.s[p.i]) {
		p.i++
	}
	return p.s[start:p.i]
}

// params consumes name=value pairs into m. It stops, leaving the cursor
// before it, at anything that is not a parameter: the scheme of the next
// challenge, or the end.
func (p *challengeParser) params(m map[string]string) {
	for {
		p.skip(" \t")
		start := p.i
		name := p.token()
		p.skip(" \t")
		if name == "" || p.done() || p.s[p.i] != '=' {
			p.i = start
			return
		}
		p.i++ // '='
		p.skip(" \t")
		var value string
		if !p.done() && p.s[p.i] == '"' {
			value = p.quoted()
		} else {
			value = p.token()
		}
		name = strings.ToLower(name)
		if _, seen := m[name]; !seen {
			m[name] = value
		}
		p.skip(" \t")
		if p.done() || p.s[p.i] != ',' {
			return
		}
		p.skip(" \t,")
	}
}

// quoted consumes a quoted string starting at '"' and returns it unescaped.
// An unterminated string runs to the end of the value.
func (p *challengeParser) quoted() string {
	p.i++ // opening '"'
	var b strings.Builder
	for !p.done() {
		c := p.s[p.i]
		p.i++
		switch {
		case c == '"':
			return b.String()
		case c == '\\' && !p.done():
			b.WriteByte(p.s[p.i])
			p.i++
		default:
			b.WriteByte(c)
		}
	}
	return b.String()
}

// isTokenChar reports whether c is a tchar of RFC 9110 section 5.6.2.
func isTokenChar(c byte) bool {
	switch {
	case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9':
		return true
	}
	return strings.IndexByte("!#$%&'*+-.^_`|~", c) >= 0
}
