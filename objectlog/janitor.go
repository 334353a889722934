package objectlog

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/oklog/ulid/v2"
)

// Janitor enforces retention and removes orphan segments. Several janitors
// may run against one partition at once: every decision is taken from
// immutable committed state (checkpoints, entries), every delete is
// idempotent, and the low-water mark only moves forward (compare-and-swap).
//
// Retention works on whole checkpoint ranges, oldest first, judged by when
// their entries were committed (not by producers' event times, which may be
// skewed): a range expires when its newest commit is older than the
// retention. Expiring a range first raises low.json past it, then deletes its
// segments, its entries and last its checkpoint, so a crash midway leaves
// work the next run finishes. The range holding the tail never expires.
type Janitor struct {
	l *Log
	// Grace keeps unreferenced segments younger than this: they may belong
	// to a commit in progress. Writers refuse to commit a segment older than
	// half of it.
	grace time.Duration
	now   func() time.Time
	// Checkpoints and entries are immutable, so they are cached across runs.
	ckpts   map[string]Checkpoint
	entries map[string]Entry
}

// JanitorReport says what one Collect did.
type JanitorReport struct {
	CheckpointsWritten int
	RangesExpired      int
	SegmentsDeleted    int
	EntriesDeleted     int
	OrphansDeleted     int
}

func (r JanitorReport) String() string {
	return fmt.Sprintf("%d checkpoints written, %d ranges expired (%d segments, %d entries), %d orphan segments deleted",
		r.CheckpointsWritten, r.RangesExpired, r.SegmentsDeleted, r.EntriesDeleted, r.OrphansDeleted)
}

// NewJanitor returns a janitor for the log. now is the wall clock (injected for tests).
func (l *Log) NewJanitor(now func() time.Time) *Janitor {
	if now == nil {
		now = time.Now
	}
	return &Janitor{l: l, grace: l.cfg.OrphanGrace, now: now, ckpts: map[string]Checkpoint{}, entries: map[string]Entry{}}
}

// Collect writes missing checkpoints, expires ranges older than retention and
// deletes orphan segments of one partition.
func (j *Janitor) Collect(ctx context.Context, topic string, partition int, retention time.Duration) (JanitorReport, error) {
	var rep JanitorReport
	if err := validatePart(topic, partition); err != nil {
		return rep, err
	}
	k := j.l.keys(topic, partition)
	// List segments before reading the manifest: a segment committed after
	// this listing is then either in the live set below or younger than the
	// grace period (writers do not commit segments older than grace/2).
	var segs []ObjectInfo
	if err := j.l.store.ListAll(ctx, k.segPrefix(), func(o ObjectInfo) error { segs = append(segs, o); return nil }); err != nil {
		return rep, err
	}
	tail, err := j.l.tail(ctx, k, -1)
	if err != nil {
		return rep, err
	}
	refs, err := j.l.checkpoints(ctx, k)
	if err != nil {
		return rep, err
	}
	low, lowVersion, err := j.readLow(ctx, k)
	if err != nil {
		return rep, err
	}
	// 1. Checkpoints for complete ranges that lack one (a writer crashed).
	have := map[int64]checkpointRef{}
	for _, r := range refs {
		have[r.FirstSeq] = r
	}
	for first := low.Seq - low.Seq%CheckpointSpan; tail.ok && first+CheckpointSpan-1 <= tail.last.Seq; first += CheckpointSpan {
		if _, ok := have[first]; ok {
			continue
		}
		if err := j.l.writeCheckpoint(ctx, k, first, nil); err != nil {
			return rep, err
		}
		rep.CheckpointsWritten++
	}
	if rep.CheckpointsWritten > 0 {
		if refs, err = j.l.checkpoints(ctx, k); err != nil {
			return rep, err
		}
	}
	// 2. Retention, oldest range first, stopping at the first one to keep.
	cutoff := j.now().Add(-retention)
	live := map[string]bool{} // segments referenced by kept entries, or deleted with their range
	expiring := true
	for _, ref := range refs {
		c, err := j.checkpoint(ctx, ref)
		if errors.Is(err, ErrNotFound) {
			continue // only expiry deletes checkpoints: another janitor got there first
		}
		if err != nil {
			return rep, err
		}
		newest := c.Entries[0].CommittedAt
		for _, e := range c.Entries {
			if e.CommittedAt.After(newest) {
				newest = e.CommittedAt
			}
		}
		if expiring && retention > 0 && newest.Before(cutoff) && tail.ok && ref.FirstSeq+CheckpointSpan <= tail.last.Seq {
			if err := j.expire(ctx, k, c, ref, &low, &lowVersion, &rep); err != nil {
				return rep, err
			}
			for _, e := range c.Entries {
				live[e.Segment] = true // already deleted: not an orphan
			}
			continue
		}
		expiring = false
		for _, e := range c.Entries {
			live[e.Segment] = true
		}
	}
	// Entries after the last checkpoint are live too.
	from := low.Seq
	if n := len(refs); n > 0 {
		from = max(from, refs[n-1].FirstSeq+CheckpointSpan)
	}
	for s := from; tail.ok && s <= tail.last.Seq; s++ {
		e, err := j.entry(ctx, k, s)
		if errors.Is(err, ErrNotFound) {
			continue // expired by another janitor since we listed the checkpoints
		}
		if err != nil {
			return rep, err
		}
		live[e.Segment] = true
	}
	// 3. Orphans: unreferenced and older than the grace period.
	horizon := j.now().Add(-j.grace)
	for _, o := range segs {
		rel := strings.TrimPrefix(o.Key, j.l.cfg.Prefix)
		if live[rel] || o.ModTime.After(horizon) {
			continue
		}
		if id, err := ulid.ParseStrict(strings.TrimSuffix(strings.TrimPrefix(o.Key, k.segPrefix()), ".jsonl.zst")); err == nil && ulid.Time(id.Time()).After(horizon) {
			continue
		}
		if err := j.l.store.Delete(ctx, o.Key); err != nil {
			return rep, err
		}
		rep.OrphansDeleted++
	}
	return rep, nil
}

// expire deletes one checkpoint range after raising the low-water mark past it.
func (j *Janitor) expire(ctx context.Context, k partKeys, c Checkpoint, ref checkpointRef, low *lowDoc, lowVersion *Version, rep *JanitorReport) error {
	next := lowDoc{Seq: ref.FirstSeq + CheckpointSpan, Offset: ref.EndOffset}
	for low.Seq < next.Seq {
		var v Version
		var err error
		if *lowVersion == "" {
			v, err = j.l.store.PutIfAbsent(ctx, k.low(), mustJSON(next))
		} else {
			v, err = j.l.store.PutIfMatch(ctx, k.low(), mustJSON(next), *lowVersion)
		}
		if err == nil {
			*low, *lowVersion = next, v
			break
		}
		if !errors.Is(err, ErrPreconditionFailed) && !errors.Is(err, ErrNotFound) {
			return fmt.Errorf("raise low-water mark to %d: %w", next.Seq, err)
		}
		// Another janitor moved it: re-read and go on from there.
		if *low, *lowVersion, err = j.readLow(ctx, k); err != nil {
			return err
		}
	}
	for _, e := range c.Entries {
		if err := j.l.store.Delete(ctx, j.l.cfg.Prefix+e.Segment); err != nil {
			return err
		}
		rep.SegmentsDeleted++
	}
	for _, e := range c.Entries {
		if err := j.l.store.Delete(ctx, k.entry(e.Seq)); err != nil {
			return err
		}
		delete(j.entries, k.entry(e.Seq))
		rep.EntriesDeleted++
	}
	if err := j.l.store.Delete(ctx, ref.Key); err != nil {
		return err
	}
	delete(j.ckpts, ref.Key)
	rep.RangesExpired++
	return nil
}

func (j *Janitor) readLow(ctx context.Context, k partKeys) (lowDoc, Version, error) {
	data, info, err := j.l.store.Get(ctx, k.low())
	if errors.Is(err, ErrNotFound) {
		return lowDoc{}, "", nil
	}
	if err != nil {
		return lowDoc{}, "", err
	}
	var d lowDoc
	if err := json.Unmarshal(data, &d); err != nil {
		return lowDoc{}, "", fmt.Errorf("decode %s: %w", k.low(), err)
	}
	return d, info.Version, nil
}

func (j *Janitor) checkpoint(ctx context.Context, ref checkpointRef) (Checkpoint, error) {
	if c, ok := j.ckpts[ref.Key]; ok {
		return c, nil
	}
	c, err := j.l.readCheckpoint(ctx, ref)
	if err == nil {
		j.ckpts[ref.Key] = c
	}
	return c, err
}

func (j *Janitor) entry(ctx context.Context, k partKeys, seq int64) (Entry, error) {
	if e, ok := j.entries[k.entry(seq)]; ok {
		return e, nil
	}
	e, err := j.l.readEntry(ctx, k, seq)
	if err == nil {
		j.entries[k.entry(seq)] = e
	}
	return e, err
}

// JanitorTarget is one topic the janitor looks after.
type JanitorTarget struct {
	Topic      string
	Partitions int
	Retention  time.Duration
}

// Run collects every partition of the targets every interval until ctx
// ends. Failures are reported through report and retried next round; they
// never stop the loop.
func (j *Janitor) Run(ctx context.Context, every time.Duration, targets func() []JanitorTarget, report func(topic string, partition int, rep JanitorReport, err error)) error {
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		for _, tg := range targets() {
			for p := 0; p < tg.Partitions; p++ {
				if ctx.Err() != nil {
					return nil
				}
				rep, err := j.Collect(ctx, tg.Topic, p, tg.Retention)
				if report != nil {
					report(tg.Topic, p, rep, err)
				}
			}
		}
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
	}
}

// DeleteTopicData deletes every object of a topic's log (all partitions:
// segments, manifest entries, checkpoints, hints) under prefix, and returns
// how many it deleted. It is what deleting a topic means for the log: a
// topic created again under the same name starts empty.
func DeleteTopicData(ctx context.Context, s *Store, prefix, topic string) (int, error) {
	if err := validatePart(topic, 0); err != nil {
		return 0, err
	}
	var keys []string
	if err := s.ListAll(ctx, prefix+"log/"+topic+"/", func(o ObjectInfo) error { keys = append(keys, o.Key); return nil }); err != nil {
		return 0, err
	}
	for i, k := range keys {
		if err := s.Delete(ctx, k); err != nil {
			return i, fmt.Errorf("delete data of topic %s: %w", topic, err)
		}
	}
	return len(keys), nil
}
