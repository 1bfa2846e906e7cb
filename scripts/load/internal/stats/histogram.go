// Package stats holds the load tool's measurements: a latency histogram
// with percentiles, and a tracker of event ids that counts distinct
// deliveries and duplicates.
//
// A Histogram is safe for concurrent use; a Tracker is not (one per
// subscriber goroutine, merged at the end).
package stats

import (
	"math"
	"math/bits"
	"sync"
	"time"
)

// subBits sets the precision of the histogram: each power of two is split
// into 2^subBits linear buckets, so a recorded value is off by at most
// 1/2^subBits (0.8%) of itself.
const subBits = 7

const (
	subCount = 1 << subBits
	// Values below subCount ns get one bucket each; above, 64-subBits
	// octaves of subCount buckets.
	numBuckets = subCount + (64-subBits)*subCount
)

// Histogram records durations (nanoseconds, >= 0) into log-linear buckets.
// The zero value is ready to use.
type Histogram struct {
	mu     sync.Mutex
	counts []uint64
	n      uint64
	sum    float64
	min    int64
	max    int64
}

func bucketOf(v int64) int {
	if v < subCount {
		return int(v)
	}
	u := uint64(v)
	exp := bits.Len64(u) - subBits - 1 // how far u is shifted to keep subBits+1 bits
	sub := int(u>>uint(exp)) - subCount
	return subCount + exp*subCount + sub
}

// bucketLow is the smallest value of bucket i; bucketHigh the largest.
func bucketLow(i int) int64 {
	if i < subCount {
		return int64(i)
	}
	exp := (i - subCount) / subCount
	sub := (i - subCount) % subCount
	return int64(uint64(subCount+sub) << uint(exp))
}

func bucketHigh(i int) int64 {
	if i < subCount {
		return int64(i)
	}
	exp := (i - subCount) / subCount
	return bucketLow(i) + int64(uint64(1)<<uint(exp)) - 1
}

// Record adds one duration. Negative durations (clock steps) count as 0.
func (h *Histogram) Record(d time.Duration) {
	v := int64(d)
	if v < 0 {
		v = 0
	}
	h.mu.Lock()
	h.record(v, 1)
	h.mu.Unlock()
}

func (h *Histogram) record(v int64, n uint64) {
	if h.counts == nil {
		h.counts = make([]uint64, numBuckets)
		h.min = math.MaxInt64
	}
	h.counts[bucketOf(v)] += n
	if h.n == 0 || v < h.min {
		h.min = v
	}
	if v > h.max {
		h.max = v
	}
	h.n += n
	h.sum += float64(v) * float64(n)
}

// Merge adds every value of o to h.
func (h *Histogram) Merge(o *Histogram) {
	if o == h {
		return
	}
	o.mu.Lock()
	counts := append([]uint64(nil), o.counts...)
	n, sum, lo, hi := o.n, o.sum, o.min, o.max
	o.mu.Unlock()
	if n == 0 {
		return
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.counts == nil {
		h.counts = make([]uint64, numBuckets)
	}
	for i, c := range counts {
		h.counts[i] += c
	}
	if h.n == 0 || lo < h.min {
		h.min = lo
	}
	if hi > h.max {
		h.max = hi
	}
	h.n += n
	h.sum += sum
}

// Summary is a histogram's digest.
type Summary struct {
	Count uint64        `json:"count"`
	Min   time.Duration `json:"min_ns"`
	Mean  time.Duration `json:"mean_ns"`
	P50   time.Duration `json:"p50_ns"`
	P90   time.Duration `json:"p90_ns"`
	P99   time.Duration `json:"p99_ns"`
	P999  time.Duration `json:"p999_ns"`
	Max   time.Duration `json:"max_ns"`
}

// Summary returns count, min, mean, max and the usual percentiles.
func (h *Histogram) Summary() Summary {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.n == 0 {
		return Summary{}
	}
	return Summary{
		Count: h.n,
		Min:   time.Duration(h.min),
		Mean:  time.Duration(h.sum / float64(h.n)),
		P50:   h.quantile(0.50),
		P90:   h.quantile(0.90),
		P99:   h.quantile(0.99),
		P999:  h.quantile(0.999),
		Max:   time.Duration(h.max),
	}
}

// Quantile returns the value below or at which a fraction q (0..1) of the
// recorded values lie: the smallest recorded value v such that at least
// ceil(q*count) values are <= v, to the histogram's precision. It returns 0
// when nothing was recorded.
func (h *Histogram) Quantile(q float64) time.Duration {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.n == 0 {
		return 0
	}
	return h.quantile(q)
}

func (h *Histogram) quantile(q float64) time.Duration {
	if q <= 0 {
		return time.Duration(h.min)
	}
	rank := uint64(math.Ceil(q * float64(h.n)))
	if rank < 1 {
		rank = 1
	}
	if rank >= h.n {
		return time.Duration(h.max)
	}
	var seen uint64
	for i, c := range h.counts {
		seen += c
		if seen >= rank {
			// The midpoint of the bucket, clamped to what was seen.
			v := bucketLow(i) + (bucketHigh(i)-bucketLow(i))/2
			v = max(v, h.min)
			v = min(v, h.max)
			return time.Duration(v)
		}
	}
	return time.Duration(h.max)
}

// Count returns how many values were recorded.
func (h *Histogram) Count() uint64 {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.n
}
