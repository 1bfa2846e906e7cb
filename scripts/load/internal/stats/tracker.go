package stats

// Tracker counts deliveries of events identified by (source, seq), where
// source is a small dense index (a simulated node) and seq counts from 0
// upwards per source. It tells distinct deliveries from duplicates using
// one bit per event. Not safe for concurrent use.
type Tracker struct {
	seen      [][]uint64
	distinct  uint64
	dups      uint64
	perSource []uint64
}

// Add records one delivery and reports whether it was a duplicate.
func (t *Tracker) Add(source uint32, seq uint64) (dup bool) {
	s := int(source)
	if s >= len(t.seen) {
		n := max(s+1, 2*len(t.seen))
		grown := make([][]uint64, n)
		copy(grown, t.seen)
		t.seen = grown
		pc := make([]uint64, n)
		copy(pc, t.perSource)
		t.perSource = pc
	}
	word, bit := int(seq/64), seq%64
	bs := t.seen[s]
	if word >= len(bs) {
		n := max(word+1, 2*len(bs), 16)
		grown := make([]uint64, n)
		copy(grown, bs)
		bs = grown
		t.seen[s] = bs
	}
	if bs[word]&(1<<bit) != 0 {
		t.dups++
		return true
	}
	bs[word] |= 1 << bit
	t.distinct++
	t.perSource[s]++
	return false
}

// Distinct is the number of different events delivered.
func (t *Tracker) Distinct() uint64 { return t.distinct }

// Duplicates is the number of deliveries of an event already delivered.
func (t *Tracker) Duplicates() uint64 { return t.dups }

// DistinctOf is the number of different events of one source delivered.
func (t *Tracker) DistinctOf(source uint32) uint64 {
	if int(source) >= len(t.perSource) {
		return 0
	}
	return t.perSource[source]
}
