//go:build !linux

package httpx

import (
	"errors"
	"syscall"
)

func setCork(syscall.RawConn, bool) error { return errors.ErrUnsupported }
