package registry

import "time"

// SetUploadIdle shortens how long an upload may sit idle, for a test.
func SetUploadIdle(d time.Duration) (restore func()) {
	old := uploadIdle
	uploadIdle = d
	return func() { uploadIdle = old }
}
