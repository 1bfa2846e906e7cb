package stats

import (
	"math/rand/v2"
	"slices"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func TestBucketsRoundTrip(t *testing.T) {
	for _, v := range []int64{0, 1, 127, 128, 129, 255, 256, 1000, 1 << 20, 123456789, 1<<62 + 12345, 1<<63 - 1} {
		i := bucketOf(v)
		if lo, hi := bucketLow(i), bucketHigh(i); v < lo || v > hi {
			t.Errorf("value %d in bucket %d [%d, %d]", v, i, lo, hi)
		}
		if i >= numBuckets {
			t.Errorf("value %d: bucket %d out of range", v, i)
		}
	}
}

// Percentiles agree with the exact ones of a sorted sample within the
// histogram's precision.
func TestQuantileMatchesExact(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	var h Histogram
	vals := make([]int64, 100_000)
	for i := range vals {
		vals[i] = int64(r.ExpFloat64() * float64(300*time.Microsecond))
		h.Record(time.Duration(vals[i]))
	}
	slices.Sort(vals)
	tests := []struct{ give float64 }{{0.5}, {0.9}, {0.99}, {0.999}}
	for _, tt := range tests {
		exact := vals[int(tt.give*float64(len(vals)))-1]
		got := int64(h.Quantile(tt.give))
		if diff := abs(got - exact); float64(diff) > 0.01*float64(exact)+1 {
			t.Errorf("q%.3f = %d, exact %d (off by %d)", tt.give, got, exact, diff)
		}
	}
	s := h.Summary()
	if s.Count != uint64(len(vals)) || int64(s.Min) != vals[0] || int64(s.Max) != vals[len(vals)-1] {
		t.Errorf("summary %+v: count/min/max wrong", s)
	}
}

func abs(v int64) int64 {
	if v < 0 {
		return -v
	}
	return v
}

func TestQuantileSmall(t *testing.T) {
	tests := []struct {
		give []time.Duration
		q    float64
		want time.Duration
	}{
		{nil, 0.5, 0},
		{[]time.Duration{5}, 0.99, 5},
		{[]time.Duration{1, 2, 3, 4}, 0.5, 2},
		{[]time.Duration{1, 2, 3, 4}, 1, 4},
		{[]time.Duration{-3, 10}, 0, 0},
	}
	for _, tt := range tests {
		var h Histogram
		for _, v := range tt.give {
			h.Record(v)
		}
		if got := h.Quantile(tt.q); got != tt.want {
			t.Errorf("%v q%v = %v, want %v", tt.give, tt.q, got, tt.want)
		}
	}
}

func TestMergeConcurrent(t *testing.T) {
	var total Histogram
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var h Histogram
			for i := range 1000 {
				h.Record(time.Duration(g*1000 + i))
			}
			total.Merge(&h)
		}()
	}
	wg.Wait()
	s := total.Summary()
	if s.Count != 8000 || s.Min != 0 || s.Max != 7999 {
		t.Errorf("merged summary %+v, want count 8000 min 0 max 7999", s)
	}
}

func TestTracker(t *testing.T) {
	var tr Tracker
	tests := []struct {
		source  uint32
		seq     uint64
		wantDup bool
	}{
		{0, 0, false}, {0, 1, false}, {0, 0, true}, {5, 100000, false}, {5, 100000, true}, {1, 63, false}, {1, 64, false},
	}
	for _, tt := range tests {
		if got := tr.Add(tt.source, tt.seq); got != tt.wantDup {
			t.Errorf("Add(%d, %d) dup = %v, want %v", tt.source, tt.seq, got, tt.wantDup)
		}
	}
	if tr.Distinct() != 5 || tr.Duplicates() != 2 || tr.DistinctOf(0) != 2 || tr.DistinctOf(5) != 1 || tr.DistinctOf(9) != 0 {
		t.Errorf("distinct %d dups %d of0 %d of5 %d", tr.Distinct(), tr.Duplicates(), tr.DistinctOf(0), tr.DistinctOf(5))
	}
}

func BenchmarkHistogramRecord(b *testing.B) {
	var h Histogram
	for i := 0; b.Loop(); i++ {
		h.Record(time.Duration(i & 0xfffff))
	}
}
