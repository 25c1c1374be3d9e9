// Package audit writes the audit trail: one JSON line per pull decision
// (every manifest request, and every request refused), naming who asked,
// from where, for what, whether it was allowed and by which rule, and how
// it ended. The file is reopened on SIGHUP, for log rotation.
package audit

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"sync"
	"time"

	"github.com/entrepot/entrepot/internal/httpx"
)

// Record is one line of the trail.
type Record struct {
	Time      time.Time `json:"time"`
	Client    string    `json:"client"` // the user or token name; "" for anonymous
	Address   string    `json:"address"`
	Method    string    `json:"method"`
	Upstream  string    `json:"upstream"`
	Repo      string    `json:"repo"`
	Ref       string    `json:"ref"`
	Digest    string    `json:"digest,omitempty"`
	Kind      string    `json:"kind"`
	Decision  string    `json:"decision"` // allowed or denied
	Rule      string    `json:"rule,omitempty"`
	Result    string    `json:"result"`
	Status    int       `json:"status"`
	RequestID string    `json:"request_id"`
	// Base is, for a derived image's build (kind "derive"), the base it
	// was built from: its reference and the digest it resolved to.
	Base string `json:"base,omitempty"`
}

// Log is an audit trail on a file, or on a writer.
type Log struct {
	path string

	mu sync.Mutex // protects w and f, and orders the lines
	w  io.Writer
	f  *os.File
}

// Open opens the trail at path ("-": standard output), appending.
func Open(path string) (*Log, error) {
	l := &Log{path: path}
	if path == "-" {
		l.w = os.Stdout
		return l, nil
	}
	if err := l.Reopen(); err != nil {
		return nil, err
	}
	return l, nil
}

// Reopen opens the file again, after it was moved away for rotation. On
// failure the old one stays in use.
func (l *Log) Reopen() error {
	if l.path == "-" {
		return nil
	}
	f, err := os.OpenFile(l.path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o640)
	if err != nil {
		return fmt.Errorf("audit.file: %w", err)
	}
	l.mu.Lock()
	old := l.f
	l.f, l.w = f, f
	l.mu.Unlock()
	if old != nil {
		old.Close()
	}
	return nil
}

// Close closes the file.
func (l *Log) Close() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.f != nil {
		return l.f.Close()
	}
	return nil
}

// Write appends a record.
func (l *Log) Write(r Record) error {
	line, err := json.Marshal(r)
	if err != nil {
		return err
	}
	line = append(line, '\n')
	l.mu.Lock()
	defer l.mu.Unlock()
	_, err = l.w.Write(line)
	return err
}

// Middleware records the pull decisions of the registry API it wraps. It
// goes inside httpx.RequestID, and outside the access gate, whose rule it
// reads from the Info.
func (l *Log) Middleware(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rw := httpx.Recorder(w)
		h.ServeHTTP(rw, r)
		info := httpx.InfoOf(r.Context())
		status := rw.Status()
		denied := status == http.StatusUnauthorized || status == http.StatusForbidden
		if info.Kind != "manifest" && !denied {
			return
		}
		decision := "allowed"
		if denied {
			decision = "denied"
		}
		l.Write(Record{
			Time: time.Now().UTC(), Client: info.Client, Address: r.RemoteAddr, Method: r.Method,
			Upstream: info.Upstream, Repo: info.Repo, Ref: info.Ref, Digest: rw.Header().Get("Docker-Content-Digest"),
			Kind: info.Kind, Decision: decision, Rule: info.Rule, Result: info.ResultOf(status), Status: status, RequestID: info.ID,
		})
	})
}
