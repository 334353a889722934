package objectlog

// Test-only views of a Log's shared reading state.

import "context"

// FollowState reports how many partitions have a tail watch, how many of
// those are idle, how many readers wait in all, and whether the wake
// watcher runs.
func FollowState(l *Log) (watches, idle, waiters int, wakeRunning bool) {
	f := l.follow
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, w := range f.mu.watches {
		watches++
		if w.state == watchIdle {
			idle++
		}
		waiters += len(w.waiters)
	}
	return watches, idle, waiters, f.mu.wake.running
}

// CacheUsage reports the cached entries, segments and the segments' decoded bytes.
func CacheUsage(l *Log) (entries, segments int, segmentBytes int64) {
	entries, _ = l.cache.entries.usage()
	segments, segmentBytes = l.cache.segments.usage()
	return entries, segments, segmentBytes
}

// ReadCacheLimit is the bound the Log's segment cache was built with.
func ReadCacheLimit(l *Log) int64 { return l.cache.segments.limit }

// CachedCommit returns what the read cache holds for entry seq of a
// partition: the entry and its segment's events.
func CachedCommit(l *Log, topic string, partition int, seq int64) (e Entry, events []Event, entryOK, segmentOK bool) {
	k := entryKey{partID{topic, partition}, seq}
	e, entryOK = l.cache.entries.peek(k)
	s, segmentOK := l.cache.segments.peek(k)
	return e, s.events, entryOK, segmentOK
}

// StoredCommit reads entry seq of a partition and decodes its segment from
// the store, bypassing the cache.
func StoredCommit(ctx context.Context, l *Log, topic string, partition int, seq int64) (Entry, []Event, error) {
	e, err := l.readEntry(ctx, l.keys(topic, partition), seq)
	if err != nil {
		return Entry{}, nil, err
	}
	events, err := l.readSegment(ctx, e)
	return e, events, err
}
