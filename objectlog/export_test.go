package objectlog

// Test-only views of a Log's shared reading state.

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
