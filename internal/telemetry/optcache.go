package telemetry

import "sync"

// maxCachedOptions bounds an optionCache; past it the cache starts over.
// The keys are agents, targets and outcomes, and RPC methods and codes: a
// deployment has a few dozen of each. One that varies per request (a
// target per URL) gains nothing from caching, and the metric SDK bounds
// its series anyway.
const maxCachedOptions = 4096

// optionCache memoises options made from a key: span, event and metric
// options that are the same for every request with that key (the SDK
// copies attributes out of options, so one list serves them all), so that
// a request like an earlier one builds none (attribute.NewSet sorts and
// allocates, an option boxes its list, and a variadic list passed on would
// be allocated at each call). What it returns is shared and never
// modified: pass it on with "...".
type optionCache[K comparable, V any] struct {
	build func(K) V

	mu sync.Mutex // guards m; a map of typed keys, so a lookup boxes nothing
	m  map[K]V
}

func newOptionCache[K comparable, V any](build func(K) V) optionCache[K, V] {
	return optionCache[K, V]{build: build}
}

// get returns the options of k, building them (outside the lock) on a miss.
func (c *optionCache[K, V]) get(k K) V {
	c.mu.Lock()
	v, ok := c.m[k]
	c.mu.Unlock()
	if ok {
		return v
	}
	v = c.build(k)
	c.mu.Lock()
	if c.m == nil || len(c.m) >= maxCachedOptions {
		c.m = make(map[K]V)
	}
	c.m[k] = v
	c.mu.Unlock()
	return v
}
