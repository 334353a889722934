package objectlog

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/oklog/ulid/v2"
)

// Config tunes a Log. The flush settings trade latency for request cost:
// every flush costs one segment PUT and one manifest PUT.
type Config struct {
	// Prefix is prepended to every key ("" or ending in "/").
	Prefix string
	// FlushInterval is how long a partition's writer waits after the first
	// pending append before it flushes. 0 flushes as soon as the previous
	// flush is done (appends arriving during a flush share the next one).
	FlushInterval time.Duration
	// FlushBytes flushes early once this many bytes of records are pending.
	FlushBytes int
	// HintEvery: the tail hint is rewritten every this many commits.
	HintEvery int
	// TailRefresh: a writer idle for longer re-reads the tail before committing.
	TailRefresh time.Duration
	// PollMin and PollMax bound how often a partition's following readers
	// look for a new entry while waiting (one poll serves all of a Log's
	// readers of the partition; it backs off from PollMin to PollMax).
	PollMin, PollMax time.Duration
	// IdleAfter: followers of a partition that found nothing new for this
	// long stop polling it and wait for a change of log/wake.json, which
	// writers rewrite before committing to a partition quiet for IdleAfter/2.
	// An idle deployment then costs one read per WakePoll, however many
	// partitions it follows.
	IdleAfter time.Duration
	// WakePoll is how often log/wake.json is read while any partition is
	// idle: the extra latency of the first event after a quiet spell.
	WakePoll time.Duration
	// ReadCacheBytes bounds the decoded segments a Log's readers share
	// (0: DefaultReadCacheBytes; negative: no caching). Segments every live
	// reader of a partition has passed are dropped before the bound is
	// reached, so it matters only for readers of a partition far apart.
	ReadCacheBytes int64
	// OrphanGrace: the janitor deletes unreferenced segments older than
	// this; writers never commit a segment older than half of it.
	OrphanGrace time.Duration
	// WriterID names this process's writer in manifest entries (default: random).
	WriterID string
}

// LowLatency and LowCost are the two documented ends of the flush trade-off.
// LowLatency waits 1 ms for company before flushing: measured on a directory
// store under load, that makes commits larger (fewer fsyncs per event) and
// so raises throughput by a third and lowers p50 and p99, for at most 1 ms
// more on an isolated append (docs/benchmarks.md).
//
// LowCost polls a tail from 250 ms, not 50: with writers flushing once a
// second, polls backing off from 50 ms (50, 100, 200, 400 ms…) made about
// five GETs that found nothing between two commits, the bulk of a steady
// load's requests (5,900 not-found GETs per 1M events, BenchmarkCostSteady,
// docs/bench/2026-11-26-dispatch-cost.txt). From 250 ms it is two. A
// commit by this process wakes its followers at once whatever PollMin is,
// so the longer interval delays only events committed by other processes,
// by at most a quarter of the flush interval they already wait.
var (
	LowLatency = Config{FlushInterval: time.Millisecond, FlushBytes: 4 << 20, HintEvery: 16, TailRefresh: 30 * time.Second, PollMin: 5 * time.Millisecond, PollMax: time.Second, OrphanGrace: time.Hour,
		IdleAfter: 5 * time.Second, WakePoll: time.Second, ReadCacheBytes: DefaultReadCacheBytes}
	LowCost = Config{FlushInterval: time.Second, FlushBytes: 16 << 20, HintEvery: 64, TailRefresh: 30 * time.Second, PollMin: 250 * time.Millisecond, PollMax: 5 * time.Second, OrphanGrace: time.Hour,
		IdleAfter: 5 * time.Second, WakePoll: time.Second, ReadCacheBytes: DefaultReadCacheBytes}
)

// DefaultReadCacheBytes holds a few hundred typical segments: enough for
// every subscription of a busy topic to read the same recent ones once.
const DefaultReadCacheBytes = 64 << 20

// DefaultConfig is LowLatency: right for a directory or a MinIO you run,
// where requests cost nothing. Choose LowCost for S3, GCS and Azure.
func DefaultConfig() Config { return LowLatency }

// RegisterFlags binds the config to flags, keeping current values as defaults.
func (c *Config) RegisterFlags(fs *flag.FlagSet) {
	fs.DurationVar(&c.FlushInterval, "flush-interval", c.FlushInterval, "how long a partition batches appends before writing a segment (0: as soon as the previous flush ends)")
	fs.IntVar(&c.FlushBytes, "flush-bytes", c.FlushBytes, "flush a segment early once this many bytes are pending")
	fs.IntVar(&c.HintEvery, "hint-every", c.HintEvery, "rewrite the tail hint every N commits")
	fs.DurationVar(&c.PollMax, "poll-max", c.PollMax, "longest wait between polls of an idle partition")
	fs.DurationVar(&c.IdleAfter, "idle-after", c.IdleAfter, "stop polling a partition quiet for this long; wait for a writer's wake-up instead")
	fs.DurationVar(&c.WakePoll, "wake-poll", c.WakePoll, "how often to look for a writer's wake-up while partitions are idle")
	fs.Int64Var(&c.ReadCacheBytes, "read-cache-bytes", c.ReadCacheBytes, "memory for decoded segments shared by readers (0: default, negative: none)")
}

// Validate reports the first setting that cannot work.
func (c Config) Validate() error {
	switch {
	case c.FlushInterval < 0:
		return fmt.Errorf("log config: flush interval %v is negative", c.FlushInterval)
	case c.FlushBytes < 1:
		return fmt.Errorf("log config: flush bytes must be at least 1, got %d", c.FlushBytes)
	case c.HintEvery < 1:
		return fmt.Errorf("log config: hint every must be at least 1, got %d", c.HintEvery)
	case c.PollMin <= 0 || c.PollMax < c.PollMin:
		return fmt.Errorf("log config: need 0 < poll min (%v) <= poll max (%v)", c.PollMin, c.PollMax)
	case c.IdleAfter <= 0:
		return fmt.Errorf("log config: idle after must be positive, got %v", c.IdleAfter)
	case c.WakePoll <= 0:
		return fmt.Errorf("log config: wake poll must be positive, got %v", c.WakePoll)
	case c.OrphanGrace < time.Minute:
		return fmt.Errorf("log config: orphan grace %v is shorter than a minute; commits in progress would lose their segments", c.OrphanGrace)
	case c.Prefix != "" && c.Prefix[len(c.Prefix)-1] != '/':
		return fmt.Errorf("log config: prefix %q must end in /", c.Prefix)
	}
	return nil
}

// ErrClosed is returned by appends to a closed Log.
var ErrClosed = errors.New("log is closed")

// Log is a durable, partitioned event log on a Store. Many Logs in many
// processes may append to and read the same partitions; they coordinate only
// through create-if-absent writes of manifest entries.
type Log struct {
	store *Store
	cfg   Config

	mu struct {
		sync.Mutex
		writers map[partID]*partWriter
		notify  map[partID]chan struct{} // closed and replaced on every local commit
		closed  bool
	}
	wg sync.WaitGroup

	cache  *readCache // shared by all readers
	follow *followers // shared waiting at partition tails

	wakes        atomic.Int64 // wake writes, numbering their bodies
	wakeFailures atomic.Int64
}

type partID struct {
	topic     string
	partition int
}

// NewLog returns a log on store.
func NewLog(store *Store, cfg Config) (*Log, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if cfg.WriterID == "" {
		cfg.WriterID = ulid.MustNew(ulid.Now(), rand.Reader).String()
	}
	if cfg.ReadCacheBytes == 0 {
		cfg.ReadCacheBytes = DefaultReadCacheBytes
	}
	l := &Log{store: store, cfg: cfg, cache: newReadCache(cfg.ReadCacheBytes)}
	l.follow = newFollowers(l)
	l.mu.writers = map[partID]*partWriter{}
	l.mu.notify = map[partID]chan struct{}{}
	return l, nil
}

// Store is the store the log writes to.
func (l *Log) Store() *Store { return l.store }

func (l *Log) keys(topic string, partition int) partKeys {
	return newPartKeys(l.cfg.Prefix, topic, partition)
}

// AppendResult says where an append's records landed.
type AppendResult struct {
	FirstOffset int64 // offset of the append's first record; the rest follow densely
	Seq         int64 // the manifest entry that committed them
}

// Append adds records to a partition and returns once the segment holding
// them and the manifest entry referencing it are durable. Concurrent appends
// to a partition share segments (group commit). An error means the records
// are not acknowledged; they may or may not be in the log.
func (l *Log) Append(ctx context.Context, topic string, partition int, recs []Record) (AppendResult, error) {
	if len(recs) == 0 {
		return AppendResult{}, fmt.Errorf("append to %s/%d: no records", topic, partition)
	}
	if err := validatePart(topic, partition); err != nil {
		return AppendResult{}, err
	}
	for i, r := range recs {
		if err := validateRecord(r); err != nil {
			return AppendResult{}, fmt.Errorf("append to %s/%d: record %d: %w", topic, partition, i, err)
		}
	}
	w, err := l.writer(topic, partition)
	if err != nil {
		return AppendResult{}, err
	}
	req := &appendReq{recs: recs, done: make(chan appendResult, 1)}
	select {
	case w.in <- req:
	case <-w.stopped:
		return AppendResult{}, ErrClosed
	case <-ctx.Done():
		return AppendResult{}, ctx.Err()
	}
	select {
	case res := <-req.done:
		return res.AppendResult, res.err
	case <-ctx.Done():
		// The records may still be committed; they are not acknowledged.
		return AppendResult{}, ctx.Err()
	}
}

func validatePart(topic string, partition int) error {
	if partition < 0 {
		return fmt.Errorf("partition %d: must not be negative", partition)
	}
	if topic == "" {
		return errors.New("empty topic name")
	}
	if strings.Contains(topic, ".") {
		// log/<name>.json keys (log/wake.json) are the log's own.
		return fmt.Errorf("%w: topic %q: names must not contain '.'", ErrInvalidKey, topic)
	}
	return ValidateKey("log/" + topic + "/0")
}

func (l *Log) writer(topic string, partition int) (*partWriter, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.mu.closed {
		return nil, ErrClosed
	}
	id := partID{topic, partition}
	w := l.mu.writers[id]
	if w == nil {
		w = newPartWriter(l, id)
		l.mu.writers[id] = w
		l.wg.Add(1)
		go func() {
			defer l.wg.Done()
			w.run()
		}()
	}
	return w, nil
}

// Forget drops what this Log knows about a topic's partitions, for when the
// topic was deleted or re-created (perhaps by another process): the next
// append re-reads the tail instead of continuing from a sequence number that
// no longer exists, and readers stop being served the old topic's cached
// entries and segments. Appends queued at that moment fail with ErrClosed.
func (l *Log) Forget(topic string) {
	l.cache.forget(topic)
	l.mu.Lock()
	defer l.mu.Unlock()
	for id, w := range l.mu.writers {
		if id.topic == topic {
			close(w.quit)
			delete(l.mu.writers, id)
		}
	}
}

// Close flushes and commits every pending append, then stops the writers.
// Appends after Close fail with ErrClosed.
func (l *Log) Close() error {
	l.mu.Lock()
	if l.mu.closed {
		l.mu.Unlock()
		return nil
	}
	l.mu.closed = true
	for _, w := range l.mu.writers {
		close(w.quit)
	}
	l.mu.Unlock()
	l.wg.Wait()
	return nil
}

// committed wakes local readers following the partition.
func (l *Log) committed(id partID) {
	l.mu.Lock()
	if ch, ok := l.mu.notify[id]; ok {
		close(ch)
		delete(l.mu.notify, id)
	}
	l.mu.Unlock()
}

// commitSignal returns a channel closed at the next local commit to the partition.
func (l *Log) commitSignal(id partID) <-chan struct{} {
	l.mu.Lock()
	defer l.mu.Unlock()
	ch, ok := l.mu.notify[id]
	if !ok {
		ch = make(chan struct{})
		l.mu.notify[id] = ch
	}
	return ch
}

// readEntry fetches and decodes manifest entry seq.
func (l *Log) readEntry(ctx context.Context, k partKeys, seq int64) (Entry, error) {
	data, _, err := l.store.Get(ctx, k.entry(seq))
	if err != nil {
		return Entry{}, err
	}
	var e Entry
	if err := json.Unmarshal(data, &e); err != nil {
		return Entry{}, fmt.Errorf("manifest entry %d: %w", seq, err)
	}
	if e.Seq != seq {
		return Entry{}, fmt.Errorf("manifest entry %d says it is entry %d", seq, e.Seq)
	}
	return e, nil
}

// cachedEntry is readEntry through the readers' shared cache.
func (l *Log) cachedEntry(ctx context.Context, id partID, seq int64) (Entry, error) {
	e, fetched, err := l.cache.entries.get(ctx, entryKey{id, seq}, func(ctx context.Context) (Entry, error) {
		return l.readEntry(ctx, l.keys(id.topic, id.partition), seq)
	})
	if err == nil && fetched {
		l.follow.saw(id, seq)
	}
	return e, err
}

func (l *Log) readJSON(ctx context.Context, key string, v any) error {
	data, _, err := l.store.Get(ctx, key)
	if err != nil {
		return err
	}
	if err := json.Unmarshal(data, v); err != nil {
		return fmt.Errorf("decode %s: %w", key, err)
	}
	return nil
}

// low returns the first sequence number and offset retention kept.
func (l *Log) low(ctx context.Context, k partKeys) (lowDoc, error) {
	var d lowDoc
	err := l.readJSON(ctx, k.low(), &d)
	if errors.Is(err, ErrNotFound) {
		return lowDoc{}, nil
	}
	return d, err
}

// Tail returns the newest committed entry of a partition, or ok=false if the
// partition holds no entry. It reads the hint, then probes forward by
// galloping (hint+1, +2, +4, …) and binary search, so a stale hint costs
// O(log n) GETs.
func (l *Log) Tail(ctx context.Context, topic string, partition int) (e Entry, ok bool, err error) {
	if err := validatePart(topic, partition); err != nil {
		return Entry{}, false, err
	}
	t, err := l.tail(ctx, l.keys(topic, partition), -1)
	return t.last, t.ok, err
}

// tailPos is where the next entry of a partition goes.
type tailPos struct {
	last       Entry // the newest entry, if ok
	ok         bool
	next       int64 // the sequence number to create next
	nextOffset int64 // the offset of the next event
}

// tail finds the newest entry, knowing entry `known` exists (-1: nothing
// known). It starts from the highest of `known`, the hint and the retention
// low-water mark, so a stale hint never leads below what retention deleted.
func (l *Log) tail(ctx context.Context, k partKeys, known int64) (tailPos, error) {
	for attempt := 0; ; attempt++ {
		t, retry, err := l.tailOnce(ctx, k, known)
		if !retry || err != nil {
			return t, err
		}
		if attempt == 3 {
			return tailPos{}, fmt.Errorf("find tail of %s: retention keeps deleting under the probe", k.root)
		}
	}
}

func (l *Log) tailOnce(ctx context.Context, k partKeys, known int64) (t tailPos, retry bool, err error) {
	h := hintDoc{Seq: -1}
	if err := l.readJSON(ctx, k.hint(), &h); err != nil && !errors.Is(err, ErrNotFound) {
		return tailPos{}, false, err
	}
	low, err := l.low(ctx, k)
	if err != nil {
		return tailPos{}, false, err
	}
	lo := max(known, h.Seq, low.Seq-1) // believed to exist (or just below low)
	var (
		loEntry Entry
		found   bool
	)
	if lo >= low.Seq {
		switch e, err := l.readEntry(ctx, k, lo); {
		case errors.Is(err, ErrNotFound):
			return tailPos{}, true, nil // retention moved past it since we read low
		case err != nil:
			return tailPos{}, false, err
		default:
			loEntry, found = e, true
		}
	}
	// Gallop to an entry that does not exist…
	step := int64(1)
	hi := lo + step
	for {
		e, err := l.readEntry(ctx, k, hi)
		if errors.Is(err, ErrNotFound) {
			break
		}
		if err != nil {
			return tailPos{}, false, err
		}
		lo, loEntry, found = hi, e, true
		step *= 2
		hi = lo + step
	}
	// …then binary search (lo, hi): lo exists (or is just below low), hi does not.
	for hi-lo > 1 {
		mid := lo + (hi-lo)/2
		e, err := l.readEntry(ctx, k, mid)
		if errors.Is(err, ErrNotFound) {
			hi = mid
			continue
		}
		if err != nil {
			return tailPos{}, false, err
		}
		lo, loEntry, found = mid, e, true
	}
	if !found {
		return tailPos{next: low.Seq, nextOffset: low.Offset}, false, nil
	}
	return tailPos{last: loEntry, ok: true, next: loEntry.Seq + 1, nextOffset: loEntry.EndOffset()}, false, nil
}
