package dashboard

import (
	"cmp"
	"net/http"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/entrepot/entrepot/internal/httpx"
)

// Repo is a repository's pulls (manifest requests by tag: one per image
// pulled, whatever its platforms) and the bytes sent of it, since start.
type Repo struct {
	Upstream string  `json:"upstream"`
	Repo     string  `json:"repo"`
	Pulls    int64   `json:"pulls"`
	Bytes    float64 `json:"bytes"`
}

// Failure is an error answer of the registry API.
type Failure struct {
	Time      time.Time `json:"time"`
	Method    string    `json:"method"`
	Path      string    `json:"path"`
	Upstream  string    `json:"upstream,omitempty"`
	Status    int       `json:"status"`
	Message   string    `json:"message"`
	RequestID string    `json:"request_id"`
}

const (
	// maxRepos bounds the repositories counted: past it, the less pulled
	// half is forgotten.
	maxRepos = 10000
	// maxErrors is how many recent errors are kept.
	maxErrors = 50
)

// recent keeps the repositories' pulls and the last errors.
type recent struct {
	mu       sync.Mutex // protects repos and failures
	repos    map[repoKey]*Repo
	failures ring[Failure]
}

type repoKey struct{ upstream, repo string }

func newRecent() *recent {
	return &recent{repos: map[repoKey]*Repo{}, failures: newRing[Failure](maxErrors)}
}

// Middleware notes each answer of the registry API it wraps: a manifest
// request by tag counts as a pull of its repository, body bytes add to
// the repository's, and an error answer joins the recent errors. It goes
// inside httpx.RequestID, whose Info it reads.
func (d *Dashboard) Middleware(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rw := httpx.Recorder(w)
		h.ServeHTTP(rw, r)
		info := httpx.InfoOf(r.Context())
		status := rw.Status()
		if status >= 400 {
			d.recent.fail(Failure{Time: d.now(), Method: r.Method, Path: r.URL.Path, Upstream: info.Upstream,
				Status: status, Message: info.Error, RequestID: info.ID})
			return
		}
		if info.Repo != "" {
			pull := info.Kind == "manifest" && info.Ref != "" && !isDigest(info.Ref)
			d.recent.count(repoKey{info.Upstream, info.Repo}, pull, rw.Written())
		}
	})
}

// isDigest tells a digest reference (algorithm:hex) from a tag, which
// holds no colon.
func isDigest(ref string) bool { return strings.Contains(ref, ":") }

func (rc *recent) count(k repoKey, pull bool, bytes int64) {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	r := rc.repos[k]
	if r == nil {
		if len(rc.repos) >= maxRepos {
			rc.forget()
		}
		r = &Repo{Upstream: k.upstream, Repo: k.repo}
		rc.repos[k] = r
	}
	if pull {
		r.Pulls++
	}
	r.Bytes += float64(bytes)
}

// forget drops the less pulled half of the repositories; rc.mu is held.
func (rc *recent) forget() {
	repos := rc.sorted()
	for _, r := range repos[len(repos)/2:] {
		delete(rc.repos, repoKey{r.Upstream, r.Repo})
	}
}

// sorted returns the repositories, most pulled first; rc.mu is held.
func (rc *recent) sorted() []Repo {
	repos := make([]Repo, 0, len(rc.repos))
	for _, r := range rc.repos {
		repos = append(repos, *r)
	}
	slices.SortFunc(repos, func(a, b Repo) int {
		return cmp.Or(cmp.Compare(b.Pulls, a.Pulls), cmp.Compare(b.Bytes, a.Bytes),
			cmp.Compare(a.Upstream, b.Upstream), cmp.Compare(a.Repo, b.Repo))
	})
	return repos
}

// top returns the n most pulled repositories.
func (rc *recent) top(n int) []Repo {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	repos := rc.sorted()
	return repos[:min(n, len(repos))]
}

func (rc *recent) fail(f Failure) {
	rc.mu.Lock()
	rc.failures.add(f)
	rc.mu.Unlock()
}

// errors returns the recent errors, newest first.
func (rc *recent) errors() []Failure {
	rc.mu.Lock()
	all := rc.failures.all()
	rc.mu.Unlock()
	slices.Reverse(all)
	return all
}

// ring holds the last n values added.
type ring[T any] struct {
	buf  []T
	next int
	full bool
}

func newRing[T any](n int) ring[T] { return ring[T]{buf: make([]T, n)} }

func (r *ring[T]) add(v T) {
	r.buf[r.next] = v
	r.next++
	if r.next == len(r.buf) {
		r.next, r.full = 0, true
	}
}

// all returns the values, oldest first, in a new slice.
func (r *ring[T]) all() []T {
	if !r.full {
		return slices.Clone(r.buf[:r.next])
	}
	return append(slices.Clone(r.buf[r.next:]), r.buf[:r.next]...)
}
