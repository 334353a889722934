package objectlog

import (
	"container/list"
	"context"
	"errors"
	"math"
	"sync"
)

// A Log's readers share one read cache. A dispatcher runs a Reader per
// (subscription, partition), so without it ten subscriptions of a topic
// would GET every manifest entry and every segment ten times.
//
// Manifest entries and segments never change once they exist (every key is
// written once), so a cached copy cannot be stale; they disappear only by
// retention, which readers detect by a missing segment, or by deleting the
// topic, after which Forget drops them.
//
// What is worth keeping is decided by where the Log's live readers are. Each
// Reader registers its position: the lowest manifest entry it may still ask
// the cache for. An entry or segment below every live reader of its
// partition will not be read again by any of them, so it is evicted as soon
// as the slowest reader passes it, and not admitted at all when fetched
// below them (a seek's binary search). What is at or ahead of some reader
// stays: readers of one partition at nearby positions share every fetch.
// This is what keeps a subscription a million events behind as cheap in
// memory as a current one: a reader catching up holds about one segment,
// not a cache full of segments it has passed. The LRU bounds (entries by
// count, segments by decoded bytes) still cap the window between the
// slowest and the fastest reader. A Reader holds only its current segment,
// never a reference that keeps evicted ones alive.
type readCache struct {
	entries  *flightCache[entryKey, Entry]
	segments *flightCache[entryKey, decodedSegment]
	readers  readerSet
}

// decodedSegment is a segment's events and the memory they hold.
type decodedSegment struct {
	segment string // the key (relative to the prefix) it was read from
	events  []Event
	size    int64
}

func newDecodedSegment(segment string, events []Event) decodedSegment {
	n := int64(cap(events)) * eventOverhead
	for _, ev := range events {
		n += int64(len(ev.Data)) + 1 // the events' bytes are one buffer of lines
	}
	return decodedSegment{segment: segment, events: events, size: n}
}

// entryKey names a manifest entry, and the segment it committed: a
// segment's events carry their offsets and commit time, which come from the
// entry. (A cached segment records its key, so that one cached under an
// earlier incarnation of a re-created topic is not served.)
type entryKey struct {
	part partID
	seq  int64
}

// maxCachedEntries bounds the entry cache: an entry decodes to a few hundred
// bytes, so 16k of them stay within a few megabytes. Entries below every
// reader are evicted at once, so the bound matters only for the window
// between a partition's slowest and fastest readers.
const maxCachedEntries = 1 << 14

// eventOverhead is what a decoded event costs beside its bytes: the Event
// itself in the segment's slice.
const eventOverhead = 64

// evictScanAbove: when the slowest reader of a partition jumps further than
// this many entries, eviction scans the caches instead of removing entry by
// entry.
const evictScanAbove = 1024

func newReadCache(maxBytes int64) *readCache {
	entryLimit := int64(maxCachedEntries)
	if maxBytes <= 0 {
		entryLimit = 0
	}
	c := &readCache{}
	c.readers.mu.parts = map[partID]*partReaders{}
	admit := func(k entryKey) bool { return c.readers.wanted(k.part, k.seq) }
	c.entries = newFlightCache[entryKey, Entry](entryLimit, func(Entry) int64 { return 1 }, admit)
	c.segments = newFlightCache[entryKey, decodedSegment](max(maxBytes, 0), func(s decodedSegment) int64 { return s.size }, admit)
	return c
}

// forget drops everything cached about a topic.
func (c *readCache) forget(topic string) {
	c.entries.removeIf(func(k entryKey) bool { return k.part.topic == topic })
	c.segments.removeIf(func(k entryKey) bool { return k.part.topic == topic })
}

// register adds a reader of partition id, not yet positioned.
func (c *readCache) register(id partID) *readerPos {
	return c.readers.add(id)
}

// move records that reader p needs nothing below entry seq any more (or,
// with unpositioned, that it may need anything), evicting what no live
// reader of the partition needs now.
func (c *readCache) move(p *readerPos, seq int64) {
	from, to := c.readers.move(p, seq)
	c.evictBelow(p.id, from, to)
}

// unregister removes reader p; idempotent.
func (c *readCache) unregister(p *readerPos) {
	from, to := c.readers.remove(p)
	c.evictBelow(p.id, from, to)
}

// evictBelow drops a partition's entries and segments in [from, to): the
// slowest reader moved from from to to.
func (c *readCache) evictBelow(id partID, from, to int64) {
	if to <= from {
		return
	}
	from = max(from, 0)
	if to-from > evictScanAbove {
		below := func(k entryKey) bool { return k.part == id && k.seq < to }
		c.entries.removeIf(below)
		c.segments.removeIf(below)
		return
	}
	for s := from; s < to; s++ {
		c.entries.remove(entryKey{id, s})
		c.segments.remove(entryKey{id, s})
	}
}

// readerSet is where a Log's live readers of each partition are.
type readerSet struct {
	mu struct {
		sync.Mutex
		parts map[partID]*partReaders
	}
}

// partReaders are the live readers of one partition.
type partReaders struct {
	readers map[*readerPos]struct{}
	min     int64 // the lowest of their positions
}

// readerPos is a Reader's registration. It does not point to its Reader, so
// that a Reader its owner dropped without Close can be collected (and a
// cleanup then unregisters it).
type readerPos struct {
	id   partID
	seq  int64 // guarded by readerSet.mu: the lowest entry the reader may read from the cache
	gone bool  // guarded by readerSet.mu: unregistered
}

// unpositioned is the position of a reader that is not positioned (new, or
// seeking): it may read anything, so it keeps everything cacheable.
const unpositioned = -1

// noReader is the lowest position of a partition without live readers:
// nothing of it is wanted.
const noReader = math.MaxInt64

func (s *readerSet) add(id partID) *readerPos {
	p := &readerPos{id: id, seq: unpositioned}
	s.mu.Lock()
	defer s.mu.Unlock()
	pr := s.mu.parts[id]
	if pr == nil {
		pr = &partReaders{readers: map[*readerPos]struct{}{}, min: noReader}
		s.mu.parts[id] = pr
	}
	pr.readers[p] = struct{}{}
	pr.min = min(pr.min, p.seq)
	return p
}

// move sets p's position and returns the partition's lowest position
// before and after.
func (s *readerSet) move(p *readerPos, seq int64) (before, after int64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	pr := s.mu.parts[p.id]
	if p.gone || pr == nil {
		return 0, 0
	}
	before = pr.min
	p.seq = seq
	pr.min = pr.lowest()
	return before, pr.min
}

// remove unregisters p and returns the partition's lowest position before
// and after (noReader once no reader is left).
func (s *readerSet) remove(p *readerPos) (before, after int64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	pr := s.mu.parts[p.id]
	if p.gone || pr == nil {
		return 0, 0
	}
	p.gone = true
	before = pr.min
	delete(pr.readers, p)
	if len(pr.readers) == 0 {
		delete(s.mu.parts, p.id)
		return before, noReader
	}
	pr.min = pr.lowest()
	return before, pr.min
}

func (pr *partReaders) lowest() int64 {
	low := int64(noReader)
	for p := range pr.readers {
		low = min(low, p.seq)
	}
	return low
}

// wanted reports whether a live reader of partition id is at or before
// entry seq: whether caching it can save a read.
func (s *readerSet) wanted(id partID, seq int64) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	pr := s.mu.parts[id]
	return pr != nil && pr.min <= seq
}

// flightCache is a bounded LRU map whose misses are single-flighted: N
// callers asking for the same missing key at once cause one fetch.
// Failed fetches are not cached (a missing manifest entry is the tail,
// which moves).
type flightCache[K comparable, V any] struct {
	limit int64         // the bound on the sum of costs; 0 caches nothing
	cost  func(V) int64 // an item's share of limit
	admit func(K) bool  // whether a key is worth caching now; called with mu held
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

func newFlightCache[K comparable, V any](limit int64, cost func(V) int64, admit func(K) bool) *flightCache[K, V] {
	c := &flightCache[K, V]{limit: limit, cost: cost, admit: admit}
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

// put caches v as the value of k, if it is worth caching.
func (c *flightCache[K, V]) put(k K, v V) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.addLocked(k, v)
}

func (c *flightCache[K, V]) addLocked(k K, v V) {
	cost := c.cost(v)
	if cost > c.limit {
		return // larger than the whole cache: it would only evict everything else
	}
	if c.admit != nil && !c.admit(k) {
		// Checked under mu: an eviction that follows a reader's move takes
		// mu after the move, so it removes whatever was admitted before it.
		return
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
