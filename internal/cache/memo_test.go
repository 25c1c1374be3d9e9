package cache

import (
	"fmt"
	"testing"
)

func TestMemoBudget(t *testing.T) {
	m := newMemo(64 * memoEntryOverhead)
	for i := range 100 {
		m.put(fmt.Sprint(i), i, 0, 0)
	}
	if m.bytes > m.max || m.lru.Len() != 64 {
		t.Fatalf("%d entries, %d bytes; want 64 within %d", m.lru.Len(), m.bytes, m.max)
	}
	if _, ok := m.get("35"); ok {
		t.Fatal("an entry beyond the budget was kept")
	}
	if v, ok := m.get("99"); !ok || v.(int) != 99 {
		t.Fatalf("the newest entry: %v %v", v, ok)
	}
	// Replacing an entry accounts for the old one.
	for range 10 {
		m.put("99", 99, 0, 0)
	}
	if m.lru.Len() != 64 || m.bytes != 64*memoEntryOverhead {
		t.Fatalf("after replacing: %d entries, %d bytes", m.lru.Len(), m.bytes)
	}
	// An entry too large for the budget is not kept, and evicts nothing.
	m.put("big", "x", m.max, 0)
	if _, ok := m.get("big"); ok || m.lru.Len() != 64 {
		t.Fatalf("a too large entry: kept %v, %d entries", ok, m.lru.Len())
	}
}

// A value read before a forget is not kept after it: it may be what the
// forget removed.
func TestMemoForget(t *testing.T) {
	m := newMemo(1 << 20)
	m.put("a", 1, 0, m.epochNow())
	before := m.epochNow()
	m.forget("a")
	if _, ok := m.get("a"); ok {
		t.Fatal("a forgotten entry is still served")
	}
	m.put("a", 1, 0, before) // read from the store before the forget
	if _, ok := m.get("a"); ok {
		t.Fatal("a value read before the forget was kept")
	}
	// A put that comes too late also drops what the memo held: an older
	// value must not outlive the newer one the caller wrote to the store.
	m.put("b", "old", 0, m.epochNow())
	late := m.epochNow()
	m.forget("unrelated")
	m.put("b", "new", 0, late)
	if v, ok := m.get("b"); ok {
		t.Fatalf("after a late put, the memo still answers %v", v)
	}
	m.put("a", 2, 0, m.epochNow())
	if v, ok := m.get("a"); !ok || v.(int) != 2 {
		t.Fatalf("a value read after the forget: %v %v", v, ok)
	}
}
