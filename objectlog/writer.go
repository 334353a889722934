package objectlog

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"sync"
	"time"

	"github.com/oklog/ulid/v2"
)

// A partition's writer is one goroutine that owns the partition's tail as
// this process knows it. Appends queue on `in`; the goroutine gathers what
// is queued into one batch (group commit) and runs the commit protocol:
//
//	open → flushed  PUT seg/<ulid>.jsonl.zst         (create-if-absent, unique name)
//	flushed → committed  PUT manifest/<next>.json    (create-if-absent)
//	   lost the race (412): GET manifest/<next>; ours (an ambiguous retry)?
//	   done : move past the winner and try the next number, same segment
//
// Only after the manifest entry exists are the batch's appends answered.
// A segment whose commit failed is never deleted here: the commit may have
// landed after all; the janitor removes true orphans after a grace period.
//
// Idle readers poll no manifest; they wait for log/wake.json to change. So a
// commit must follow, by at most IdleAfter/2, a wake write or this writer's
// previous commit to the partition (which any active reader sees, and then
// stays active for IdleAfter). The writer keeps the time it last had such a
// guarantee; when that is older than IdleAfter/2 it PUTs wake.json alongside
// the segment, and when a slow commit ends more than IdleAfter/2 after it,
// once more after the commit (doc.go has the argument).
type partWriter struct {
	l  *Log
	id partID
	k  partKeys

	in      chan *appendReq // unbuffered: a request is either taken or refused
	quit    chan struct{}   // closed by Log.Close: flush what is queued, then stop
	stopped chan struct{}   // closed when run returns

	// Owned by the run goroutine.
	pos       tailPos
	known     bool      // pos is believed current
	knownAt   time.Time // when pos was last confirmed (monotonic)
	cold      bool      // pos came from resolving the tail, not from our own commit
	commits   int
	rangeSeen map[int64]Entry // entries of recent checkpoint ranges this writer has seen
	covered   time.Time       // start of the last wake write or winning manifest PUT (monotonic; zero: none)
	rewake    bool            // the last commit attempt ended too long after covered: wake readers again

	bg sync.WaitGroup // hint and checkpoint writes
}

type appendReq struct {
	recs []Record
	done chan appendResult // buffered(1)
}

type appendResult struct {
	AppendResult
	err error
}

func newPartWriter(l *Log, id partID) *partWriter {
	return &partWriter{
		l: l, id: id, k: l.keys(id.topic, id.partition),
		in: make(chan *appendReq), quit: make(chan struct{}), stopped: make(chan struct{}),
		rangeSeen: map[int64]Entry{},
	}
}

func (w *partWriter) run() {
	defer close(w.stopped)
	defer w.bg.Wait()
	cfg := w.l.cfg
	for {
		var batch []*appendReq
		var size int
		add := func(r *appendReq) {
			batch = append(batch, r)
			for _, rec := range r.recs {
				size += len(rec.Data) + 1
			}
		}
		select {
		case r := <-w.in:
			add(r)
		case <-w.quit:
			return
		}
		quitting := false
		if cfg.FlushInterval > 0 {
			t := time.NewTimer(cfg.FlushInterval)
		gather:
			for size < cfg.FlushBytes {
				select {
				case r := <-w.in:
					add(r)
				case <-t.C:
					break gather
				case <-w.quit:
					quitting = true
					break gather
				}
			}
			t.Stop()
		}
		// Take everything already waiting: it costs nothing to include.
	drain:
		for size < cfg.FlushBytes {
			select {
			case r := <-w.in:
				add(r)
			default:
				break drain
			}
		}
		w.flush(batch)
		if quitting {
			return
		}
	}
}

// flush commits one batch and answers its appends.
func (w *partWriter) flush(batch []*appendReq) {
	var recs []Record
	for _, r := range batch {
		recs = append(recs, r.recs...)
	}
	// The commit outlives any one caller's context: callers may give up
	// waiting, but a half-done commit is finished (or fails) on its own.
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	e, raw, err := w.commit(ctx, recs)
	if err == nil {
		// Before the answers: an appender that reads next finds it cached.
		w.l.cacheCommitted(w.id, e, raw)
	}
	off := e.FirstOffset
	for _, r := range batch {
		res := appendResult{err: err}
		if err == nil {
			res.AppendResult = AppendResult{FirstOffset: off, Seq: e.Seq}
			off += int64(len(r.recs))
		}
		r.done <- res
	}
	if err == nil {
		w.l.committed(w.id)
	}
	if w.rewake {
		// After the answers: only readers in other processes are waiting for it.
		w.rewake = false
		if start := time.Now(); w.l.writeWake(ctx) == nil {
			w.covered = start
		}
	}
}

// commit writes recs as a segment and commits it; raw is the segment's
// lines, uncompressed.
func (w *partWriter) commit(ctx context.Context, recs []Record) (_ Entry, raw []byte, _ error) {
	store := w.l.store
	data, raw, sum, err := encodeSegment(recs)
	if err != nil {
		return Entry{}, nil, err
	}
	segKey := w.k.segment(ulid.MustNew(ulid.Now(), rand.Reader).String())
	half := w.l.cfg.IdleAfter / 2
	var woke chan error
	wakeStart := time.Now()
	if w.covered.IsZero() || wakeStart.Sub(w.covered) > half {
		woke = make(chan error, 1)
		go func() { woke <- w.l.writeWake(ctx) }()
	}
	written := time.Now()
	if _, err := store.PutIfAbsent(ctx, segKey, data); err != nil && !errors.Is(err, ErrPreconditionFailed) {
		// ErrPreconditionFailed can only mean an earlier attempt of this very
		// PUT landed: the name is a fresh ULID.
		return Entry{}, nil, fmt.Errorf("write segment: %w", err)
	}
	if woke != nil && <-woke == nil {
		w.covered = wakeStart
	}
	cover := w.covered
	e, putStart, attempted, err := w.commitEntry(ctx, segKey, data, sum, written)
	if attempted && (cover.IsZero() || time.Since(cover) > half) {
		// The entry may be visible (even if err says otherwise) longer than
		// IdleAfter/2 after the last guarantee.
		w.rewake = true
	}
	if err == nil {
		w.covered = putStart
	}
	return e, raw, err
}

// cacheCommitted puts an entry this process just committed, and its
// segment's events, into the readers' cache, so that local readers read
// them without a GET. Only if a live reader of the partition is at or
// before the entry: otherwise no reader here would read it, and it would
// only take memory. The cached forms are what a reader would get from the
// store: the entry as its stored JSON decodes, and the events split from
// the very lines whose compression is the stored segment.
func (l *Log) cacheCommitted(id partID, e Entry, raw []byte) {
	if !l.cache.readers.wanted(id, e.Seq) {
		return
	}
	var stored Entry
	if err := json.Unmarshal(mustJSON(e), &stored); err != nil {
		return // cannot happen: mustJSON made it
	}
	events, err := splitSegment(raw, stored)
	if err != nil {
		return // cannot happen: the records were validated as lines
	}
	k := entryKey{id, e.Seq}
	l.cache.entries.put(k, stored)
	l.cache.segments.put(k, newDecodedSegment(stored.Segment, events))
}

// commitEntry creates the manifest entry for a written segment. putStart is
// when the winning PUT started; attempted says whether any PUT was tried.
func (w *partWriter) commitEntry(ctx context.Context, segKey string, data []byte, sum segmentSummary, written time.Time) (_ Entry, putStart time.Time, attempted bool, _ error) {
	store := w.l.store
	if !w.known || time.Since(w.knownAt) > w.l.cfg.TailRefresh {
		if err := w.resolveTail(ctx); err != nil {
			return Entry{}, putStart, attempted, err
		}
	}
	e := Entry{
		Segment: segKey[len(w.l.cfg.Prefix):], Events: sum.Events, Bytes: int64(len(data)), RawBytes: sum.RawBytes,
		MinTime: sum.MinTime, MaxTime: sum.MaxTime, Checksum: checksum(data), Writer: w.l.cfg.WriterID,
	}
	losses := 0
	for {
		if age := time.Since(written); age > w.l.cfg.OrphanGrace/2 {
			// The janitor may treat a segment this old as an orphan.
			return Entry{}, putStart, attempted, fmt.Errorf("segment %s was written %v ago, too long to commit safely", segKey, age.Round(time.Second))
		}
		e.Seq, e.FirstOffset, e.CommittedAt = w.pos.next, w.pos.nextOffset, time.Now().UTC()
		putStart, attempted = time.Now(), true
		_, err := store.PutIfAbsent(ctx, w.k.entry(e.Seq), mustJSON(e))
		if err == nil || errors.Is(err, ErrPreconditionFailed) {
			won := err == nil
			if !won {
				// Lost the race, or our own earlier attempt landed (ambiguous retry).
				other, rerr := w.l.readEntry(ctx, w.k, e.Seq)
				if rerr != nil {
					w.known = false
					return Entry{}, putStart, attempted, fmt.Errorf("read manifest entry %d after losing it: %w", e.Seq, rerr)
				}
				if other.Segment == e.Segment {
					e, won = other, true
				} else {
					w.observed(other)
					losses++
					if losses%4 == 0 {
						// Far behind (an idle writer among busy ones): jump, don't walk.
						if err := w.resolveTail(ctx); err != nil {
							return Entry{}, putStart, attempted, err
						}
					}
					continue
				}
			}
			if won && w.cold {
				stale, err := w.coveredByCheckpoint(ctx, e.Seq)
				if err != nil {
					w.known = false
					return Entry{}, putStart, attempted, err
				}
				if stale {
					// Our tail was so stale that retention had already deleted
					// this number: our entry resurrected an expired key that
					// no reader will look at. Remove it and commit at the tail.
					if err := store.Delete(ctx, w.k.entry(e.Seq)); err != nil {
						w.known = false
						return Entry{}, putStart, attempted, fmt.Errorf("remove stale manifest entry %d: %w", e.Seq, err)
					}
					if err := w.resolveTail(ctx); err != nil {
						return Entry{}, putStart, attempted, err
					}
					continue
				}
			}
			w.observed(e)
			w.cold = false
			w.afterCommit(e)
			return e, putStart, attempted, nil
		}
		w.known = false
		return Entry{}, putStart, attempted, fmt.Errorf("commit manifest entry %d: %w", e.Seq, err)
	}
}

// resolveTail re-reads where the partition ends.
func (w *partWriter) resolveTail(ctx context.Context) error {
	known := int64(-1)
	if w.known {
		known = w.pos.next - 1
	}
	t, err := w.l.tail(ctx, w.k, known)
	if err != nil {
		w.known = false
		return fmt.Errorf("find tail of %s/%d: %w", w.id.topic, w.id.partition, err)
	}
	w.pos, w.known, w.knownAt, w.cold = t, true, time.Now(), true
	if t.ok {
		w.rangeSeen[t.last.Seq] = t.last
	}
	return nil
}

// observed records that entry e exists: the tail is past it.
func (w *partWriter) observed(e Entry) {
	w.rangeSeen[e.Seq] = e
	if len(w.rangeSeen) > 2*CheckpointSpan {
		// Another writer closes our ranges; forget what no checkpoint of ours needs.
		for s := range w.rangeSeen {
			if s < e.Seq-e.Seq%CheckpointSpan {
				delete(w.rangeSeen, s)
			}
		}
	}
	if e.Seq >= w.pos.next {
		w.pos = tailPos{last: e, ok: true, next: e.Seq + 1, nextOffset: e.EndOffset()}
	}
	w.knownAt = time.Now()
}

// coveredByCheckpoint reports whether a checkpoint covers seq, which means
// its range was complete before we wrote seq.
func (w *partWriter) coveredByCheckpoint(ctx context.Context, seq int64) (bool, error) {
	first := seq - seq%CheckpointSpan
	page, err := w.l.store.List(ctx, fmt.Sprintf("%s%020d-", w.k.ckptPrefix(), first), "", 1)
	if err != nil {
		return false, fmt.Errorf("check checkpoint over entry %d: %w", seq, err)
	}
	return len(page.Objects) > 0, nil
}

// afterCommit writes the hint and, at the end of a range, the checkpoint, in
// the background: neither is needed for correctness, only for cheap reads.
func (w *partWriter) afterCommit(e Entry) {
	w.commits++
	if w.commits%w.l.cfg.HintEvery == 0 {
		w.bg.Add(1)
		go func() {
			defer w.bg.Done()
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			_, _ = w.l.store.Put(ctx, w.k.hint(), mustJSON(hintDoc{Seq: e.Seq}))
		}()
	}
	if e.Seq%CheckpointSpan != CheckpointSpan-1 {
		return
	}
	first := e.Seq - (CheckpointSpan - 1)
	have := make(map[int64]Entry, CheckpointSpan)
	for s, ent := range w.rangeSeen {
		if s >= first && s <= e.Seq {
			have[s] = ent
		}
		if s <= e.Seq {
			delete(w.rangeSeen, s)
		}
	}
	w.bg.Add(1)
	go func() {
		defer w.bg.Done()
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		_ = w.l.writeCheckpoint(ctx, w.k, first, have)
	}()
}

// writeCheckpoint compacts entries [first, first+CheckpointSpan) into a
// checkpoint, reading those not in have. Idempotent: the content is
// determined by the entries, and the write is create-if-absent.
func (l *Log) writeCheckpoint(ctx context.Context, k partKeys, first int64, have map[int64]Entry) error {
	c := Checkpoint{FirstSeq: first, Entries: make([]Entry, 0, CheckpointSpan)}
	for s := first; s < first+CheckpointSpan; s++ {
		e, ok := have[s]
		if !ok {
			var err error
			if e, err = l.readEntry(ctx, k, s); err != nil {
				return fmt.Errorf("checkpoint %d: %w", first, err)
			}
		}
		c.Entries = append(c.Entries, e)
	}
	sort.Slice(c.Entries, func(i, j int) bool { return c.Entries[i].Seq < c.Entries[j].Seq })
	ref := c.ref(k)
	if _, err := l.store.PutIfAbsent(ctx, ref.Key, mustJSON(c)); err != nil && !errors.Is(err, ErrPreconditionFailed) {
		return fmt.Errorf("write checkpoint %d: %w", first, err)
	}
	return nil
}
