package cache

import (
	"hash"
	"sync"
)

// pipeHash hashes a fill's bytes on a goroutine of its own, while the fill
// reads the next ones from the upstream and writes them to the store.
// SHA-256 runs at about the speed of a loopback transfer on one core, so
// hashing in line would halve a cold pull's speed; in parallel, the fill
// goes as fast as the slower of the two. The fill takes a buffer, fills it,
// and hands it over; the buffer comes back once hashed.
type pipeHash struct {
	h    hash.Hash
	todo chan chunk
	free chan *[]byte
	done chan struct{}
	stop sync.Once
}

// bufSize is the size of a fill's read buffers.
const bufSize = 256 << 10

var bufPool = sync.Pool{New: func() any { b := make([]byte, bufSize); return &b }}

// chunk is the first n bytes of a buffer.
type chunk struct {
	buf *[]byte
	n   int
}

// pipeDepth is how many buffers a fill has in flight: enough to absorb
// the jitter between reading and hashing, at bufSize each.
const pipeDepth = 4

func newPipeHash(h hash.Hash) *pipeHash {
	p := &pipeHash{h: h, todo: make(chan chunk, pipeDepth), free: make(chan *[]byte, pipeDepth), done: make(chan struct{})}
	for range pipeDepth {
		p.free <- bufPool.Get().(*[]byte)
	}
	go func() {
		defer close(p.done)
		for c := range p.todo {
			h.Write((*c.buf)[:c.n])
			p.free <- c.buf
		}
	}()
	return p
}

// buffer returns an empty buffer, waiting for the hash to free one.
func (p *pipeHash) buffer() *[]byte { return <-p.free }

// write hands the first n bytes of buf, from buffer, over to be hashed.
func (p *pipeHash) write(buf *[]byte, n int) { p.todo <- chunk{buf, n} }

// sum waits for every byte handed over to be hashed and returns the hash.
func (p *pipeHash) sum() hash.Hash {
	p.close()
	return p.h
}

// close ends the hashing goroutine and returns the buffers to the pool.
func (p *pipeHash) close() {
	p.stop.Do(func() {
		close(p.todo)
		<-p.done
		for {
			select {
			case b := <-p.free:
				bufPool.Put(b)
			default:
				return
			}
		}
	})
}
