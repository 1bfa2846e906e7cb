package ratelimit

import (
	"fmt"
	"testing"
	"time"
)

func TestAllowBurstThenRefuse(t *testing.T) {
	l := New(1, 3, 10)
	now := time.Unix(1000, 0)
	l.now = func() time.Time { return now }
	for i := range 3 {
		if ok, _ := l.Allow("k"); !ok {
			t.Fatalf("request %d refused within burst", i)
		}
	}
	ok, retry := l.Allow("k")
	if ok {
		t.Fatal("request past burst allowed")
	}
	if retry != time.Second {
		t.Errorf("retryAfter = %v, want 1s", retry)
	}
	if ok, _ := l.Allow("other"); !ok {
		t.Error("another key is limited by the first")
	}
	now = now.Add(time.Second)
	if ok, _ := l.Allow("k"); !ok {
		t.Error("request refused after refill")
	}
}

func TestRetryAfterRoundsUp(t *testing.T) {
	l := New(0.2, 1, 10) // one request per 5 s
	now := time.Unix(1000, 0)
	l.now = func() time.Time { return now }
	l.Allow("k")
	ok, retry := l.Allow("k")
	if ok || retry != 5*time.Second {
		t.Fatalf("Allow = %v, %v; want false, 5s", ok, retry)
	}
	// A refused request does not consume the bucket.
	now = now.Add(5 * time.Second)
	if ok, _ := l.Allow("k"); !ok {
		t.Error("refused after the advertised Retry-After")
	}
}

func TestDisabled(t *testing.T) {
	l := New(0, 1, 1)
	for range 100 {
		if ok, _ := l.Allow("k"); !ok {
			t.Fatal("disabled limiter refused")
		}
	}
	var nilL *Limiter
	if ok, _ := nilL.Allow("k"); !ok {
		t.Fatal("nil limiter refused")
	}
}

func TestBounded(t *testing.T) {
	l := New(1, 1, 100)
	now := time.Unix(1000, 0)
	l.now = func() time.Time { return now }
	for i := range 1000 {
		now = now.Add(time.Millisecond)
		l.Allow(fmt.Sprint("key-", i))
		if l.Len() > 100 {
			t.Fatalf("tracking %d keys, limit 100", l.Len())
		}
	}
	// The most recent key survives eviction and stays limited.
	if ok, _ := l.Allow("key-999"); ok {
		t.Error("most recent key was evicted")
	}
}
