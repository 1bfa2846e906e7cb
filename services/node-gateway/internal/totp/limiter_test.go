package totp

import (
	"fmt"
	"testing"
	"time"
)

func TestLimiterSlidingWindow(t *testing.T) {
	l := newLimiter(2, time.Minute, 100)
	t0 := time.Unix(1_700_000_000, 0)
	l.fail("198.51.100.1:1000", t0)
	if l.blocked("198.51.100.1", t0) {
		t.Fatal("blocked after 1 of 2 failures")
	}
	l.fail("198.51.100.1:2000", t0.Add(30*time.Second))
	if !l.blocked("198.51.100.1:3000", t0.Add(40*time.Second)) {
		t.Fatal("not blocked after 2 failures within the window (ports must not matter)")
	}
	if l.blocked("198.51.100.2", t0.Add(40*time.Second)) {
		t.Fatal("another address is blocked")
	}
	if l.blocked("198.51.100.1", t0.Add(61*time.Second)) {
		t.Fatal("still blocked once the first failure left the window")
	}
	l.fail("198.51.100.1", t0.Add(61*time.Second))
	if !l.blocked("198.51.100.1", t0.Add(89*time.Second)) {
		t.Fatal("not blocked with 2 failures in the last minute")
	}
	if l.blocked("198.51.100.1", t0.Add(91*time.Second)) {
		t.Fatal("blocked with 1 failure in the last minute")
	}
}

func TestLimiterBoundedMemory(t *testing.T) {
	const max = 64
	l := newLimiter(5, time.Minute, max)
	t0 := time.Unix(1_700_000_000, 0)
	for i := range 10_000 {
		addr := fmt.Sprintf("10.%d.%d.%d", i>>16&0xff, i>>8&0xff, i&0xff)
		for range 7 { // more than the limit: the ring must not grow
			l.fail(addr, t0.Add(time.Duration(i)*time.Millisecond))
		}
		if n := l.len(); n > max {
			t.Fatalf("tracking %d addresses, cap %d", n, max)
		}
	}
	for _, f := range l.addrs {
		if len(f.times) > 5 {
			t.Fatalf("an address holds %d timestamps, limit 5", len(f.times))
		}
	}
	// Once everything is older than the window, a new failure sweeps it all.
	l.fail("192.0.2.1", t0.Add(time.Hour))
	if n := l.len(); n != 1 {
		t.Fatalf("tracking %d addresses after the sweep, want 1", n)
	}
}

func TestLimiterDisabled(t *testing.T) {
	l := newLimiter(0, time.Minute, 10)
	for range 100 {
		l.fail("192.0.2.1", time.Unix(0, 0))
	}
	if l.blocked("192.0.2.1", time.Unix(0, 0)) || l.len() != 0 {
		t.Fatal("a disabled limiter blocks or remembers")
	}
}
