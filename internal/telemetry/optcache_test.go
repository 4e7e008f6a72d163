package telemetry

import "testing"

// TestOptionCache: each key is built once and then shared; past
// maxCachedOptions keys the cache starts over (and keeps working).
func TestOptionCache(t *testing.T) {
	builds := map[int]int{}
	c := newOptionCache(func(k int) *int {
		builds[k]++
		v := k * 10
		return &v
	})
	a, b := c.get(1), c.get(1)
	if a != b || *a != 10 || builds[1] != 1 {
		t.Fatalf("get(1) twice: %p %p (%d), built %d times; want one shared value", a, b, *a, builds[1])
	}
	for k := 2; k <= maxCachedOptions+1; k++ {
		c.get(k)
	}
	if len(c.m) > maxCachedOptions {
		t.Fatalf("%d entries cached, bound %d", len(c.m), maxCachedOptions)
	}
	if v := c.get(1); *v != 10 || builds[1] != 2 {
		t.Errorf("get(1) after the cache started over: %d, built %d times; want 10, rebuilt once", *v, builds[1])
	}
}
