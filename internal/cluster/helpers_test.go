package cluster_test

import (
	"bytes"
	"context"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/entrepot/entrepot/internal/cluster"
	"github.com/entrepot/entrepot/internal/testenv"
)

const secret = "peer-s3cret"

// replica is a Cluster under test, with the httptest server that it
// advertises (its mux serves nothing until a test mounts Handler) and its
// logs.
type replica struct {
	*cluster.Cluster
	URL  string
	mux  *http.ServeMux
	logs *logBuffer
}

// newRedis starts a redis-server for the test and returns its URL.
func newRedis(t *testing.T) string {
	addr, _ := testenv.Redis(t)
	return "redis://" + addr + "/0"
}

// newReplica joins a replica, with quick timings, to the cluster on the
// Redis at redisURL; it leaves when the test ends.
func newReplica(t *testing.T, redisURL string) *replica {
	t.Helper()
	mux := http.NewServeMux()
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	logs := &logBuffer{}
	c, err := cluster.NewQuick(context.Background(), cluster.Config{Redis: redisURL, Advertise: srv.URL, Secret: secret},
		slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug})))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return &replica{Cluster: c, URL: srv.URL, mux: mux, logs: logs}
}

// eventually polls cond until it holds, and fails the test if it does not
// within a deadline far beyond what it needs: the deadline only ends a
// test that would hang, it measures nothing.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("never: %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// leaders returns the replicas among rs that lead.
func leaders(rs ...*replica) []*replica {
	var out []*replica
	for _, r := range rs {
		if r.Leader() {
			out = append(out, r)
		}
	}
	return out
}

// alone tells whether r's Ready says it acts alone.
func alone(r *replica) bool {
	ok, detail := r.Ready()
	return ok && strings.HasPrefix(detail, "cluster: alone, redis unreachable since ")
}

// logBuffer is a log destination safe for concurrent use.
type logBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *logBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *logBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// count returns how many log lines contain s.
func (l *logBuffer) count(s string) int { return strings.Count(l.String(), s) }
