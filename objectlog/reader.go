package objectlog

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"runtime"
	"sync/atomic"
	"time"
)

// Reader reads one partition in offset order, each committed event once.
// Position it with one of the Seek methods, then call Next. A Reader is not
// safe for concurrent use. Readers of one Log share a cache of entries and
// segments and, when following, one poll per partition tail: many Readers
// of a partition cost about what one does. The cache keeps what some live
// Reader has yet to read, so Close a Reader when done with it: until then
// (or until it is garbage collected) it keeps what is ahead of it cacheable.
type Reader struct {
	l  *Log
	id partID
	k  partKeys

	pos     *readerPos      // its registration with the cache
	told    int64           // the position last given to the cache
	cleanup runtime.Cleanup // unregisters a Reader dropped without Close
	closed  atomic.Bool

	follow bool

	next     int64   // the manifest entry to read when pending runs out
	pending  []Event // events of the current segment not yet returned (shared with the cache: read only)
	offset   int64   // offset of the next event Next returns
	seeked   bool
	lastRead time.Time // when an entry was last found (monotonic)
	lowAt    time.Time // when low.json was last consulted
	skipped  int64
}

// NewReader returns a reader of a partition positioned at its earliest
// retained event. Call Follow(true) to wait for new events at the tail.
func (l *Log) NewReader(topic string, partition int) (*Reader, error) {
	if err := validatePart(topic, partition); err != nil {
		return nil, err
	}
	id := partID{topic, partition}
	r := &Reader{l: l, id: id, k: l.keys(topic, partition), pos: l.cache.register(id), told: unpositioned}
	cache := l.cache
	r.cleanup = runtime.AddCleanup(r, cache.unregister, r.pos)
	return r, nil
}

// ErrReaderClosed is returned by a Reader's methods after Close.
var ErrReaderClosed = errors.New("reader is closed")

// Close releases the reader: the shared cache stops keeping entries and
// segments for it. Calling it again does nothing; the reader's other
// methods then return ErrReaderClosed. Unlike them, Close may be called
// while another goroutine uses the reader.
func (r *Reader) Close() {
	if r.closed.Swap(true) {
		return
	}
	r.cleanup.Stop()
	r.l.cache.unregister(r.pos)
}

// track tells the cache the lowest entry this reader may still read from
// it: its current segment's while events of it are pending, else the next.
func (r *Reader) track() {
	seq := int64(unpositioned)
	if r.seeked {
		seq = r.next
		if len(r.pending) > 0 {
			seq--
		}
	}
	if seq != r.told {
		r.told = seq
		r.l.cache.move(r.pos, seq)
	}
}

// seeking makes the reader unpositioned, for the cache, while a Seek
// method looks for its new position: entries and segments it reads on the
// way are cached, for other readers seeking to about the same place. The
// Seek method defers track, which restores the old position if it fails.
func (r *Reader) seeking() error {
	if r.closed.Load() {
		return ErrReaderClosed
	}
	if r.told != unpositioned {
		r.told = unpositioned
		r.l.cache.move(r.pos, unpositioned)
	}
	return nil
}

// Follow makes Next wait for new events at the tail instead of returning io.EOF.
func (r *Reader) Follow(on bool) { r.follow = on }

// Offset is the offset of the event Next returns next.
func (r *Reader) Offset() int64 { return r.offset }

// Skipped counts events retention deleted before this reader got to them.
func (r *Reader) Skipped() int64 { return r.skipped }

// Buffered is how many events Next returns without a store request or a
// wait: the rest of the segment it is reading. A caller batching events can
// take these and stop there, rather than block for more.
func (r *Reader) Buffered() int { return len(r.pending) }

func (r *Reader) position(seq int64, events []Event, offset int64) {
	if len(events) == 0 {
		events = nil // an empty tail of a slice would still pin the whole segment
	}
	r.next, r.pending, r.offset, r.seeked = seq, events, offset, true
	r.lastRead = time.Now()
	r.track()
}

// SeekEarliest positions at the first event retention kept.
func (r *Reader) SeekEarliest(ctx context.Context) error {
	if err := r.seeking(); err != nil {
		return err
	}
	defer r.track()
	low, err := r.l.low(ctx, r.k)
	if err != nil {
		return err
	}
	r.position(low.Seq, nil, low.Offset)
	return nil
}

// SeekLatest positions after the last committed event: Next returns only
// events committed from now on.
func (r *Reader) SeekLatest(ctx context.Context) error {
	if err := r.seeking(); err != nil {
		return err
	}
	defer r.track()
	t, err := r.l.tail(ctx, r.k, -1)
	if err != nil {
		return err
	}
	r.position(t.next, nil, t.nextOffset)
	return nil
}

// SeekOffset positions at the event with the given offset (or the first one
// retained, if retention deleted it; or the tail, if it is not written yet).
func (r *Reader) SeekOffset(ctx context.Context, off int64) error {
	if err := r.seeking(); err != nil {
		return err
	}
	defer r.track()
	low, err := r.l.low(ctx, r.k)
	if err != nil {
		return err
	}
	if off <= low.Offset {
		r.position(low.Seq, nil, low.Offset)
		return nil
	}
	refs, err := r.l.checkpoints(ctx, r.k)
	if err != nil {
		return err
	}
	from := low.Seq // entries from here on are searched one by one
	for _, ref := range refs {
		if ref.FirstSeq < low.Seq {
			continue
		}
		if off >= ref.FirstOffset && off < ref.EndOffset {
			c, err := r.l.readCheckpoint(ctx, ref)
			if err != nil {
				return err
			}
			for _, e := range c.Entries {
				if off < e.EndOffset() {
					return r.positionIn(ctx, e, func(ev Event) bool { return ev.Offset >= off })
				}
			}
		}
		if ref.EndOffset <= off {
			from = ref.FirstSeq + CheckpointSpan
		}
	}
	t, err := r.l.tail(ctx, r.k, -1)
	if err != nil {
		return err
	}
	if !t.ok || off >= t.nextOffset {
		r.position(t.next, nil, t.nextOffset)
		return nil
	}
	// Binary search entries [from, t.last.Seq] for the one holding off.
	lo, hi := from, t.last.Seq
	e := t.last
	for lo < hi {
		mid := lo + (hi-lo)/2
		m, err := r.l.cachedEntry(ctx, r.id, mid)
		if err != nil {
			return fmt.Errorf("seek offset %d: %w", off, err)
		}
		switch {
		case off < m.FirstOffset:
			hi = mid - 1
		case off >= m.EndOffset():
			lo = mid + 1
		default:
			lo, hi = mid, mid
		}
		e = m
	}
	if e.Seq != lo {
		if e, err = r.l.cachedEntry(ctx, r.id, lo); err != nil {
			return fmt.Errorf("seek offset %d: %w", off, err)
		}
	}
	return r.positionIn(ctx, e, func(ev Event) bool { return ev.Offset >= off })
}

// SeekTime positions at the first entry whose newest event is at or after t,
// and within it at the first event from t on. Every event with a time at or
// after t is at or after this position; because producers' clocks disagree,
// a few older events may follow it too.
func (r *Reader) SeekTime(ctx context.Context, t time.Time) error {
	if err := r.seeking(); err != nil {
		return err
	}
	defer r.track()
	low, err := r.l.low(ctx, r.k)
	if err != nil {
		return err
	}
	refs, err := r.l.checkpoints(ctx, r.k)
	if err != nil {
		return err
	}
	scan := func(from, to int64) (Entry, bool, error) { // entries [from, to), to<0: up to the tail
		for s := from; to < 0 || s < to; s++ {
			e, err := r.l.cachedEntry(ctx, r.id, s)
			if errors.Is(err, ErrNotFound) && to < 0 {
				return Entry{}, false, nil
			}
			if err != nil {
				return Entry{}, false, fmt.Errorf("seek time: %w", err)
			}
			if !e.MaxTime.Before(t) {
				return e, true, nil
			}
		}
		return Entry{}, false, nil
	}
	expect := low.Seq
	for _, ref := range refs {
		if ref.FirstSeq < low.Seq {
			continue
		}
		if ref.FirstSeq > expect { // a range whose checkpoint is missing
			if e, ok, err := scan(expect, ref.FirstSeq); err != nil || ok {
				if err != nil {
					return err
				}
				return r.positionIn(ctx, e, func(ev Event) bool { return true })
			}
		}
		expect = ref.FirstSeq + CheckpointSpan
		if ref.MaxTime.Before(t.Truncate(time.Millisecond)) {
			continue
		}
		c, err := r.l.readCheckpoint(ctx, ref)
		if err != nil {
			return err
		}
		for _, e := range c.Entries {
			if !e.MaxTime.Before(t) {
				return r.positionIn(ctx, e, func(ev Event) bool { return true })
			}
		}
	}
	e, ok, err := scan(expect, -1)
	if err != nil {
		return err
	}
	if !ok {
		return r.SeekLatest(ctx)
	}
	return r.positionIn(ctx, e, func(ev Event) bool { return true })
}

// positionIn positions at the first event of entry e for which keep is true.
func (r *Reader) positionIn(ctx context.Context, e Entry, keep func(Event) bool) error {
	events, err := r.l.cachedSegment(ctx, r.id, e)
	if err != nil {
		return err
	}
	for i, ev := range events {
		if keep(ev) {
			r.position(e.Seq+1, events[i:], ev.Offset)
			return nil
		}
	}
	r.position(e.Seq+1, nil, e.EndOffset())
	return nil
}

// Next returns the next event. At the tail it returns io.EOF, or, when
// following, waits (with the Log's other followers of the partition: one
// poll for all, at once on a commit by this process, and once the partition
// has been quiet for IdleAfter, on a writer's wake-up) until an event is
// committed or ctx ends. The event's Data is shared with other readers and
// must not be modified.
func (r *Reader) Next(ctx context.Context) (Event, error) {
	if r.closed.Load() {
		return Event{}, ErrReaderClosed
	}
	if !r.seeked {
		if err := r.SeekEarliest(ctx); err != nil {
			return Event{}, err
		}
	}
	for len(r.pending) == 0 {
		signal := r.l.commitSignal(r.id)
		var (
			e   Entry
			err = ErrNotFound
		)
		if !r.follow || !r.l.follow.knownMissing(r.id, r.next) {
			e, err = r.l.cachedEntry(ctx, r.id, r.next)
		}
		if err == nil {
			events, err := r.l.cachedSegment(ctx, r.id, e)
			if errors.Is(err, ErrNotFound) {
				// Retention deleted it since the entry was read (perhaps long
				// ago, into the cache): the entry is gone too.
				r.l.cache.entries.remove(entryKey{r.id, e.Seq})
				low, lerr := r.l.low(ctx, r.k)
				if lerr != nil {
					return Event{}, lerr
				}
				r.lowAt = time.Now()
				if e.Seq >= low.Seq {
					return Event{}, err
				}
				r.skipped += low.Offset - r.offset
				r.next, r.offset = low.Seq, low.Offset
				r.track()
				continue
			}
			if err != nil {
				return Event{}, err
			}
			if e.FirstOffset > r.offset {
				r.skipped += e.FirstOffset - r.offset
			}
			r.position(e.Seq+1, events, e.FirstOffset)
			break
		}
		if !errors.Is(err, ErrNotFound) {
			return Event{}, err
		}
		// Either the tail, or retention deleted this entry while we were
		// away. Look at the low-water mark now and then to tell.
		if time.Since(r.lastRead) > time.Minute && time.Since(r.lowAt) > time.Minute {
			r.lowAt = time.Now()
			low, err := r.l.low(ctx, r.k)
			if err != nil {
				return Event{}, err
			}
			if r.next < low.Seq {
				r.skipped += low.Offset - r.offset
				r.next, r.offset = low.Seq, low.Offset
				r.track()
				continue
			}
		}
		if !r.follow {
			return Event{}, io.EOF
		}
		low, err := r.l.follow.await(ctx, r.id, r.k, r.next, r.lastRead, signal)
		if err != nil {
			return Event{}, err
		}
		if low != nil && r.next < low.Seq {
			r.lowAt = time.Now()
			r.skipped += low.Offset - r.offset
			r.next, r.offset = low.Seq, low.Offset
			r.track()
		}
	}
	ev := r.pending[0]
	r.pending = r.pending[1:]
	if len(r.pending) == 0 {
		r.pending = nil // let the cache's eviction free the segment
		r.track()       // which it does now, if no other reader is behind
	}
	r.offset = ev.Offset + 1
	return ev, nil
}

// cachedSegment is readSegment through the readers' shared cache.
func (l *Log) cachedSegment(ctx context.Context, id partID, e Entry) ([]Event, error) {
	k := entryKey{id, e.Seq}
	s, _, err := l.cache.segments.get(ctx, k, func(ctx context.Context) (decodedSegment, error) {
		events, err := l.readSegment(ctx, e)
		return newDecodedSegment(e.Segment, events), err
	})
	if err == nil && s.segment != e.Segment {
		// Cached from an earlier incarnation of a re-created topic (Forget
		// raced with a read): not this entry's segment.
		l.cache.segments.remove(k)
		return l.readSegment(ctx, e)
	}
	return s.events, err
}

// readSegment fetches a committed segment and verifies its checksum.
func (l *Log) readSegment(ctx context.Context, e Entry) ([]Event, error) {
	data, _, err := l.store.Get(ctx, l.cfg.Prefix+e.Segment)
	if err != nil {
		return nil, fmt.Errorf("read segment of entry %d: %w", e.Seq, err)
	}
	return decodeSegment(data, e)
}

// checkpoints lists a partition's checkpoints in sequence order; their keys
// carry offsets and times, so no checkpoint is read to list them.
func (l *Log) checkpoints(ctx context.Context, k partKeys) ([]checkpointRef, error) {
	var refs []checkpointRef
	err := l.store.ListAll(ctx, k.ckptPrefix(), func(o ObjectInfo) error {
		if ref, ok := k.parseCheckpointKey(o.Key); ok {
			refs = append(refs, ref)
		}
		return nil
	})
	return refs, err
}

func (l *Log) readCheckpoint(ctx context.Context, ref checkpointRef) (Checkpoint, error) {
	data, _, err := l.store.Get(ctx, ref.Key)
	if err != nil {
		return Checkpoint{}, fmt.Errorf("read checkpoint %d: %w", ref.FirstSeq, err)
	}
	var c Checkpoint
	if err := json.Unmarshal(data, &c); err != nil {
		return Checkpoint{}, fmt.Errorf("decode checkpoint %d: %w", ref.FirstSeq, err)
	}
	if len(c.Entries) != CheckpointSpan || c.FirstSeq != ref.FirstSeq {
		return Checkpoint{}, fmt.Errorf("checkpoint %s is malformed: %d entries from %d", ref.Key, len(c.Entries), c.FirstSeq)
	}
	return c, nil
}
