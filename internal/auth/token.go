package auth

import (
	"crypto/rand"
	"errors"
	"fmt"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// Issuer signs and verifies the cache's registry tokens: short-lived
// JWTs (HS256) that name the client and the repositories and actions it
// was granted, as the Docker token specification has them.
type Issuer struct {
	key     []byte
	service string
	ttl     time.Duration
	now     func() time.Time
}

// claims are a token's.
type claims struct {
	jwt.RegisteredClaims
	Via    string   `json:"via"`
	Access []Access `json:"access"`
}

// NewIssuer returns an issuer for service signing with key (a new random
// one when empty: tokens then hold for this process only).
func NewIssuer(service string, key []byte, ttl time.Duration) *Issuer {
	if len(key) == 0 {
		key = make([]byte, 32)
		rand.Read(key)
	}
	return &Issuer{key: key, service: service, ttl: ttl, now: time.Now}
}

// TTL is how long a token holds.
func (is *Issuer) TTL() time.Duration { return is.ttl }

// Issue signs a token for id with access.
func (is *Issuer) Issue(id Identity, access []Access) (string, time.Time, error) {
	now := is.now()
	exp := now.Add(is.ttl)
	c := claims{
		RegisteredClaims: jwt.RegisteredClaims{
			Issuer: is.service, Subject: id.Name, Audience: jwt.ClaimStrings{is.service},
			IssuedAt: jwt.NewNumericDate(now), NotBefore: jwt.NewNumericDate(now.Add(-time.Minute)), ExpiresAt: jwt.NewNumericDate(exp),
		},
		Via:    id.Via,
		Access: access,
	}
	s, err := jwt.NewWithClaims(jwt.SigningMethodHS256, c).SignedString(is.key)
	return s, exp, err
}

// ErrBadToken is a bearer token this cache did not sign, or no longer
// honours.
var ErrBadToken = errors.New("invalid token")

// Verify checks a token's signature, algorithm, audience and time, and
// returns whom it names with what it grants.
func (is *Issuer) Verify(token string) (Identity, error) {
	var c claims
	_, err := jwt.ParseWithClaims(token, &c, func(*jwt.Token) (any, error) { return is.key, nil },
		jwt.WithValidMethods([]string{jwt.SigningMethodHS256.Alg()}),
		jwt.WithAudience(is.service), jwt.WithIssuer(is.service),
		jwt.WithExpirationRequired(), jwt.WithTimeFunc(is.now))
	if err != nil {
		return Identity{}, fmt.Errorf("%w: %v", ErrBadToken, err)
	}
	return Identity{Name: c.Subject, Via: "bearer", Access: c.Access}, nil
}
