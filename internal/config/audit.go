package config

import (
	"fmt"
	"os"
	"path/filepath"
)

// Audit is the audit trail (the audit section).
type Audit struct {
	// File receives one JSON line per pull decision (audit.file); "-"
	// is standard output. Empty: no trail. The file is reopened on
	// SIGHUP, for log rotation.
	File string
}

// fileAudit is the audit section.
type fileAudit struct {
	File string `yaml:"file"`
}

func (fa *fileAudit) apply(a *Audit) error {
	if fa.File == "" || fa.File == "-" {
		a.File = fa.File
		return nil
	}
	if fi, err := os.Stat(filepath.Dir(fa.File)); err != nil || !fi.IsDir() {
		return fmt.Errorf("audit.file: %s: its directory does not exist", fa.File)
	}
	a.File = fa.File
	return nil
}
