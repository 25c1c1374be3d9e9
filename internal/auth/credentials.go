package auth

import (
	"bufio"
	"crypto/sha256"
	"crypto/subtle"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"sync"
	"time"

	"golang.org/x/crypto/bcrypt"
)

// ParseHTPasswd reads an htpasswd file of bcrypt hashes (htpasswd -B):
// one "user:hash" a line, # comments and blank lines skipped. Any other
// hash kind is an error: MD5 and SHA-1 hashes are too cheap to guess.
func ParseHTPasswd(r io.Reader) (map[string][]byte, error) {
	users := map[string][]byte{}
	sc := bufio.NewScanner(r)
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		user, hash, ok := strings.Cut(line, ":")
		switch {
		case !ok || user == "" || hash == "":
			return nil, fmt.Errorf("line %d: want user:hash", n)
		case !strings.HasPrefix(hash, "$2a$") && !strings.HasPrefix(hash, "$2b$") && !strings.HasPrefix(hash, "$2y$"):
			return nil, fmt.Errorf("line %d: user %q: only bcrypt hashes are accepted (htpasswd -B)", n, user)
		case users[user] != nil:
			return nil, fmt.Errorf("line %d: user %q listed twice", n, user)
		}
		if _, err := bcrypt.Cost([]byte(hash)); err != nil {
			return nil, fmt.Errorf("line %d: user %q: %w", n, user, err)
		}
		users[user] = []byte(hash)
	}
	if err := sc.Err(); err != nil {
		return nil, err
	}
	return users, nil
}

// ParseTokens reads static tokens: "name:token" pairs, one a line or
// separated by commas, # comments skipped. A token must be 16 characters
// at least, and unique.
func ParseTokens(s string) (map[string]string, error) {
	tokens := map[string]string{} // token -> name
	for n, line := range strings.FieldsFunc(s, func(r rune) bool { return r == '\n' || r == ',' }) {
		line = strings.TrimSpace(line)
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		name, token, ok := strings.Cut(line, ":")
		switch {
		case !ok || name == "" || token == "":
			return nil, fmt.Errorf("entry %d: want name:token", n+1)
		case len(token) < 16:
			return nil, fmt.Errorf("entry %d: the token of %q is shorter than 16 characters", n+1, name)
		case tokens[token] != "":
			return nil, fmt.Errorf("entry %d: the token of %q is also %q's", n+1, name, tokens[token])
		}
		tokens[token] = name
	}
	return tokens, nil
}

// Credentials checks what clients show: user names and passwords against
// the htpasswd file (re-read when it changes), and static tokens.
type Credentials struct {
	path   string
	tokens map[string]string // token -> name

	mu      sync.Mutex // protects the fields below
	stamp   string
	checked time.Time
	users   map[string][]byte
	// verified remembers passwords that matched, by a hash of user and
	// password, so that a client sending basic auth on every request
	// costs one bcrypt comparison, not one each (about 50 ms).
	verified map[[32]byte]time.Time
}

// recheck is how often, at most, the htpasswd file is looked at again;
// remember how long a verified password is taken without bcrypt.
const (
	recheck  = time.Second
	remember = 5 * time.Minute
)

// NewCredentials reads the htpasswd file at path (none if empty) and
// takes the static tokens (token -> name).
func NewCredentials(path string, tokens map[string]string) (*Credentials, error) {
	c := &Credentials{path: path, tokens: tokens, users: map[string][]byte{}, verified: map[[32]byte]time.Time{}}
	if path != "" {
		if err := c.load(); err != nil {
			return nil, err
		}
	}
	return c, nil
}

func (c *Credentials) load() error {
	f, err := os.Open(c.path)
	if err != nil {
		return err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return err
	}
	users, err := ParseHTPasswd(f)
	if err != nil {
		return fmt.Errorf("%s: %w", c.path, err)
	}
	c.users, c.stamp = users, stampOf(fi)
	c.verified = map[[32]byte]time.Time{} // a removed user or a changed password takes effect
	return nil
}

func stampOf(fi os.FileInfo) string { return fmt.Sprintf("%d:%d", fi.Size(), fi.ModTime().UnixNano()) }

// ErrBadCredentials is a user name and password, or a token, that match
// nothing.
var ErrBadCredentials = errors.New("invalid credentials")

// Password checks a user name and password. A static token is accepted
// as the password of any user name (docker login -u ci -p TOKEN).
func (c *Credentials) Password(user, password string) (Identity, error) {
	if name, ok := c.Token(password); ok {
		return Identity{Name: name, Via: "token"}, nil
	}
	now := time.Now()
	c.mu.Lock()
	if c.path != "" && now.Sub(c.checked) >= recheck {
		c.checked = now
		if fi, err := os.Stat(c.path); err == nil && stampOf(fi) != c.stamp {
			c.load() // on failure the previous users stay in service
		}
	}
	hash := c.users[user]
	key := sha256.Sum256([]byte(user + "\x00" + password))
	seen, ok := c.verified[key]
	c.mu.Unlock()
	if hash == nil {
		// Compare anyway, so that an unknown user takes as long as a
		// wrong password.
		bcrypt.CompareHashAndPassword(dummyHash(), []byte(password))
		return Identity{}, ErrBadCredentials
	}
	if ok && now.Sub(seen) < remember {
		return Identity{Name: user, Via: "basic"}, nil
	}
	if bcrypt.CompareHashAndPassword(hash, []byte(password)) != nil {
		return Identity{}, ErrBadCredentials
	}
	c.mu.Lock()
	if len(c.verified) > 10000 {
		c.verified = map[[32]byte]time.Time{}
	}
	c.verified[key] = now
	c.mu.Unlock()
	return Identity{Name: user, Via: "basic"}, nil
}

// dummyHash is compared against for unknown users.
var dummyHash = sync.OnceValue(func() []byte {
	h, _ := bcrypt.GenerateFromPassword([]byte("entrepot"), bcrypt.DefaultCost)
	return h
})

// Token looks a static token up, in constant time per token.
func (c *Credentials) Token(token string) (name string, ok bool) {
	for t, n := range c.tokens {
		if subtle.ConstantTimeCompare([]byte(t), []byte(token)) == 1 {
			name, ok = n, true
		}
	}
	return name, ok
}
