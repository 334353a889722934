package objectlog

import (
	"container/list"
	"context"
	"errors"
	"sync"
)

// A Log's readers share one read cache. A dispatcher runs a Reader per
// (subscription, partition), so without it ten subscriptions of a topic
// would GET every manifest entry and every segment ten times.
//
// Manifest entries and segments never change once they exist (every key is
// written once), so a cached copy cannot be stale; they disappear only by
// retention, which readers detect by a missing segment, or by deleting the
// topic, after which Forget drops them. The cache is bounded (entries by
// count, segments by decoded bytes), which is what keeps a subscription a
// million events behind as cheap in memory as a current one: a Reader holds
// only its current segment, never a reference that keeps evicted ones alive.
type readCache struct {
	entries  *flightCache[entryKey, Entry]
	segments *flightCache[segmentKey, decodedSegment]
}

// decodedSegment is a segment's events and the memory they hold.
type decodedSegment struct {
	events []Event
	size   int64
}

func newDecodedSegment(events []Event) decodedSegment {
	n := int64(cap(events)) * eventOverhead
	for _, ev := range events {
		n += int64(len(ev.Data)) + 1 // the events' bytes are one buffer of lines
	}
	return decodedSegment{events: events, size: n}
}

type entryKey struct {
	part partID
	seq  int64
}

// segmentKey names a segment with the entry that committed it: a segment's
// events carry their offsets and commit time, which come from the entry.
type segmentKey struct {
	part    partID
	seq     int64
	segment string
}

// maxCachedEntries bounds the entry cache: an entry decodes to a few hundred
// bytes, so 64k of them stay in the tens of megabytes.
const maxCachedEntries = 1 << 16

// eventOverhead is what a decoded event costs beside its bytes: the Event
// itself in the segment's slice.
const eventOverhead = 64

func newReadCache(maxBytes int64) *readCache {
	entryLimit := int64(maxCachedEntries)
	if maxBytes <= 0 {
		entryLimit = 0
	}
	return &readCache{
		entries:  newFlightCache[entryKey, Entry](entryLimit, func(Entry) int64 { return 1 }),
		segments: newFlightCache[segmentKey, decodedSegment](max(maxBytes, 0), func(s decodedSegment) int64 { return s.size }),
	}
}

// forget drops everything cached about a topic.
func (c *readCache) forget(topic string) {
	c.entries.removeIf(func(k entryKey) bool { return k.part.topic == topic })
	c.segments.removeIf(func(k segmentKey) bool { return k.part.topic == topic })
}

// flightCache is a bounded LRU map whose misses are single-flighted: N
// callers asking for the same missing key at once cause one fetch.
// Failed fetches are not cached (a missing manifest entry is the tail,
// which moves).
type flightCache[K comparable, V any] struct {
	limit int64         // the bound on the sum of costs; 0 caches nothing
	cost  func(V) int64 // an item's share of limit
	mu    struct {
		sync.Mutex
		size  int64
		lru   *list.List // of *lruItem[K, V], most recently used first
		items map[K]*list.Element
		calls map[K]*flightCall[V] // fetches in progress
	}
}

type lruItem[K comparable, V any] struct {
	key  K
	val  V
	cost int64
}

type flightCall[V any] struct {
	done chan struct{} // closed when val and err are set
	val  V
	err  error
}

func newFlightCache[K comparable, V any](limit int64, cost func(V) int64) *flightCache[K, V] {
	c := &flightCache[K, V]{limit: limit, cost: cost}
	c.mu.lru = list.New()
	c.mu.items = map[K]*list.Element{}
	c.mu.calls = map[K]*flightCall[V]{}
	return c
}

// get returns the cached value of k or fetches it, joining a fetch of k
// already in progress. fetched says whether this call ran the fetch.
func (c *flightCache[K, V]) get(ctx context.Context, k K, fetch func(context.Context) (V, error)) (v V, fetched bool, err error) {
	for {
		c.mu.Lock()
		if el, ok := c.mu.items[k]; ok {
			c.mu.lru.MoveToFront(el)
			v = el.Value.(*lruItem[K, V]).val
			c.mu.Unlock()
			return v, false, nil
		}
		call, joining := c.mu.calls[k]
		if !joining {
			call = &flightCall[V]{done: make(chan struct{})}
			c.mu.calls[k] = call
		}
		c.mu.Unlock()
		if !joining {
			call.val, call.err = fetch(ctx)
			c.mu.Lock()
			delete(c.mu.calls, k)
			if call.err == nil {
				c.addLocked(k, call.val)
			}
			c.mu.Unlock()
			close(call.done)
			return call.val, true, call.err
		}
		select {
		case <-call.done:
		case <-ctx.Done():
			return v, false, ctx.Err()
		}
		if call.err != nil && ctx.Err() == nil && (errors.Is(call.err, context.Canceled) || errors.Is(call.err, context.DeadlineExceeded)) {
			continue // the caller that fetched gave up; we did not
		}
		return call.val, false, call.err
	}
}

// peek returns the cached value of k without fetching it.
func (c *flightCache[K, V]) peek(k K) (V, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if el, ok := c.mu.items[k]; ok {
		return el.Value.(*lruItem[K, V]).val, true
	}
	var zero V
	return zero, false
}

func (c *flightCache[K, V]) addLocked(k K, v V) {
	cost := c.cost(v)
	if cost > c.limit {
		return // larger than the whole cache: it would only evict everything else
	}
	if el, ok := c.mu.items[k]; ok {
		c.removeLocked(el)
	}
	c.mu.items[k] = c.mu.lru.PushFront(&lruItem[K, V]{key: k, val: v, cost: cost})
	c.mu.size += cost
	for c.mu.size > c.limit {
		c.removeLocked(c.mu.lru.Back())
	}
}

func (c *flightCache[K, V]) removeLocked(el *list.Element) {
	it := c.mu.lru.Remove(el).(*lruItem[K, V])
	delete(c.mu.items, it.key)
	c.mu.size -= it.cost
}

func (c *flightCache[K, V]) remove(k K) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if el, ok := c.mu.items[k]; ok {
		c.removeLocked(el)
	}
}

func (c *flightCache[K, V]) removeIf(match func(K) bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for k, el := range c.mu.items {
		if match(k) {
			c.removeLocked(el)
		}
	}
}

// usage returns the number of cached items and the sum of their costs.
func (c *flightCache[K, V]) usage() (items int, size int64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.mu.items), c.mu.size
}
