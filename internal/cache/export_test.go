package cache

import "time"

// BufSize is the size of a fill's chunks, for the tests.
const BufSize = bufSize

// SetClock replaces the cache's clock, before the cache is used.
func SetClock(c *Cache, now func() time.Time) { c.now = now }
