package s3

import "github.com/entrepot/entrepot/internal/store"

// PartSize is the size of an upload's parts but the last.
const PartSize = partSize

// SetPartHook sets fn to be called after each part of an upload is sent.
// Set it before the bucket's first Create.
func SetPartHook(b *Bucket, fn func(key string, number int)) { b.partDone = fn }

// UploaderDone tells whether the uploader goroutine of f, one of b's spool
// files, has exited, if it ever ran.
func UploaderDone(f store.SpoolFile) bool {
	sf := f.(*spoolFile)
	sf.mu.Lock()
	started := sf.started
	sf.mu.Unlock()
	if !started {
		return true
	}
	select {
	case <-sf.done:
		return true
	default:
		return false
	}
}

// AgeCount makes the last count of b's blobs older than a recount allows.
func AgeCount(b *Bucket) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.counted = b.counted.Add(-2 * recountAfter)
}

// BeginCount starts a count of b's blobs, as the first Usage does.
func BeginCount(b *Bucket) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.running == nil {
		b.startCount()
	}
}

// WaitCount waits for the count of b's blobs under way, if any.
func WaitCount(b *Bucket) {
	b.mu.Lock()
	run := b.running
	b.mu.Unlock()
	if run != nil {
		<-run.done
	}
}
