package cache

// BufSize is the size of a fill's chunks, for the tests.
const BufSize = bufSize
