package objectlog

import (
	"context"
	"encoding/json"
	"errors"
	"slices"
	"sync"
	"time"
)

// Following readers wait at the tail of their partitions. Left to
// themselves, N readers of a partition would each poll manifest/<next>, and
// a deployment following P quiet partitions would pay P GETs per poll
// interval forever. Instead a Log keeps one tailWatch per partition that has
// a reader waiting: a goroutine that polls for all of them (backing off from
// PollMin to PollMax, at once on a local commit), and that stops polling once
// the partition has been quiet for IdleAfter. Quiet watches then wait on the
// wake watcher, one goroutine per Log that reads log/wake.json every
// WakePoll; writers rewrite that object before committing to a partition
// that was quiet. doc.go says why no committed event is missed.
//
// A watch's states:
//
//	active  polling the manifest, PollMin→PollMax
//	armed   still polling, but quiet for IdleAfter/2: subscribed to the wake
//	        watcher, whose first read must be IdleAfter/2 old before a watch
//	        may rely on it
//	idle    not polling: woken by a change of wake.json, a local commit, a
//	        reader that was active more recently than the last poll, or
//	        every idleSafetyPoll
type watchState int

const (
	watchActive watchState = iota
	watchArmed
	watchIdle
)

// idleSafetyPoll: an idle watch still polls its partition this often, in
// case a wake write was lost (a writer's PUT failed, or it crashed between
// commit and the wake write a slow commit needs afterwards).
const idleSafetyPoll = 5 * time.Minute

// lowCheckEvery: a watch whose readers have found nothing for this long
// reads low.json this often, for readers that retention left behind (their
// next entry was deleted, so polling for it would find nothing forever).
const lowCheckEvery = time.Minute

// followers is a Log's shared waiting room for following readers.
type followers struct {
	l  *Log
	mu struct {
		sync.Mutex
		watches map[partID]*tailWatch
		wake    wakeState
	}
}

// tailWatch polls the tail of one partition for every reader waiting there.
type tailWatch struct {
	id   partID
	k    partKeys
	kick chan struct{} // buffered(1): look at the waiters again now

	// Guarded by followers.mu.
	waiters  map[*tailWaiter]struct{}
	state    watchState
	interval time.Duration   // the next wait while polling
	missing  map[int64]bool  // entries the last round found missing (and no one has found since)
	found    int64           // the highest entry seen to exist
	polled   time.Time       // when the last round started
	lowAt    time.Time       // when low.json was last read
	wakeCh   <-chan struct{} // while idle: closed when wake.json changes
}

// tailWaiter is one reader waiting for entry seq.
type tailWaiter struct {
	seq         int64
	activeSince time.Time     // when its reader last found an entry (or was positioned)
	done        chan struct{} // closed when woken; then low and err are set
	low         *lowDoc       // woken because retention passed seq
	err         error         // woken because polling failed
}

// wakeState is what the wake watcher knows of log/wake.json.
type wakeState struct {
	subs      int       // watches armed or idle
	running   bool      // the watcher goroutine runs
	baseline  time.Time // when this run's first successful read ended (zero: none yet)
	version   Version
	exists    bool
	changedAt time.Time     // when the read that saw the latest change ended
	changed   chan struct{} // closed and replaced at every change
}

func newFollowers(l *Log) *followers {
	f := &followers{l: l}
	f.mu.watches = map[partID]*tailWatch{}
	f.mu.wake.changed = make(chan struct{})
	return f
}

// knownMissing reports whether a watch is polling the partition and its
// last round found entry seq missing: a reader may then wait for the watch
// without asking the store itself.
func (f *followers) knownMissing(id partID, seq int64) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	w := f.mu.watches[id]
	return w != nil && w.missing[seq]
}

// await blocks until entry seq may exist, retention passed it (low is set),
// polling failed, or ctx ends. sig is the partition's commit signal as it
// was before the caller found seq missing, so a local commit since then is
// not missed. activeSince is when the caller last found an entry.
func (f *followers) await(ctx context.Context, id partID, k partKeys, seq int64, activeSince time.Time, sig <-chan struct{}) (*lowDoc, error) {
	f.mu.Lock()
	select {
	case <-sig:
		f.mu.Unlock()
		return nil, nil // committed here since the caller looked
	default:
	}
	w := f.mu.watches[id]
	if w == nil {
		w = &tailWatch{
			id: id, k: k, kick: make(chan struct{}, 1),
			waiters: map[*tailWaiter]struct{}{}, missing: map[int64]bool{seq: true},
			interval: f.l.cfg.PollMin, lowAt: time.Now(), found: -1,
		}
		f.mu.watches[id] = w
		go f.run(w, sig)
	}
	wt := &tailWaiter{seq: seq, activeSince: activeSince, done: make(chan struct{})}
	w.waiters[wt] = struct{}{}
	if w.state == watchIdle && !(w.missing[seq] && w.polled.After(activeSince.Add(f.l.cfg.IdleAfter))) {
		// No poll since this reader's last find is old enough to let it sleep.
		w.poke()
	}
	f.mu.Unlock()
	select {
	case <-wt.done:
		return wt.low, wt.err
	case <-ctx.Done():
		f.mu.Lock()
		if _, ok := w.waiters[wt]; ok {
			delete(w.waiters, wt)
			if len(w.waiters) == 0 {
				w.poke() // let it stop now rather than at its next poll
			}
		}
		f.mu.Unlock()
		return nil, ctx.Err()
	}
}

func (w *tailWatch) poke() {
	select {
	case w.kick <- struct{}{}:
	default:
	}
}

// saw records that entry seq of a partition exists: readers waiting for it
// (or for an earlier one) go on, and the watch polls actively again.
func (f *followers) saw(id partID, seq int64) {
	f.mu.Lock()
	defer f.mu.Unlock()
	w := f.mu.watches[id]
	if w == nil {
		return
	}
	w.found = max(w.found, seq)
	progress := false
	for s := range w.missing {
		if s <= seq {
			delete(w.missing, s)
			progress = true
		}
	}
	for wt := range w.waiters {
		if wt.seq <= seq {
			delete(w.waiters, wt)
			close(wt.done)
			progress = true
		}
	}
	if !progress {
		return // an old entry, read by a reader catching up
	}
	w.interval = f.l.cfg.PollMin
	if w.state != watchActive {
		f.setStateLocked(w, watchActive)
		w.poke()
	}
}

func (f *followers) setStateLocked(w *tailWatch, s watchState) {
	subscribed := func(s watchState) bool { return s != watchActive }
	switch {
	case subscribed(s) && !subscribed(w.state):
		f.mu.wake.subs++
		if !f.mu.wake.running {
			f.mu.wake.running = true
			go f.runWake()
		}
	case !subscribed(s) && subscribed(w.state):
		f.mu.wake.subs--
	}
	w.state = s
	w.wakeCh = nil
	if s == watchIdle {
		w.wakeCh = f.mu.wake.changed
	}
}

// run is a watch's goroutine. It returns once no reader waits.
func (f *followers) run(w *tailWatch, sig <-chan struct{}) {
	cfg := f.l.cfg
	for {
		f.mu.Lock()
		state, wait, wakeCh := w.state, w.interval, w.wakeCh
		if state == watchIdle {
			wait = idleSafetyPoll - time.Since(w.polled)
		}
		f.mu.Unlock()
		t := time.NewTimer(wait)
		var timedOut bool
		select {
		case <-t.C:
			timedOut = true
		case <-sig:
		case <-w.kick:
		case <-wakeCh:
		}
		t.Stop()

		f.mu.Lock()
		if len(w.waiters) == 0 {
			f.setStateLocked(w, watchActive)
			delete(f.mu.watches, w.id)
			f.mu.Unlock()
			return
		}
		switch {
		case w.state == watchIdle && !timedOut:
			// Something may have been committed: poll from PollMin again,
			// staying subscribed until quiet long enough to sleep again.
			f.setStateLocked(w, watchArmed)
			w.interval = cfg.PollMin
		case w.state != watchIdle && timedOut:
			w.interval = min(2*w.interval, cfg.PollMax)
		}
		var seqs []int64
		stale := false // a waiter found nothing for a while: retention may have passed it
		for wt := range w.waiters {
			if !slices.Contains(seqs, wt.seq) {
				seqs = append(seqs, wt.seq)
			}
			stale = stale || time.Since(wt.activeSince) > lowCheckEvery
		}
		checkLow := stale && time.Since(w.lowAt) > lowCheckEvery
		f.mu.Unlock()

		sig = f.l.commitSignal(w.id)
		start := time.Now()
		missing, failed, low := f.poll(w, seqs, checkLow)

		f.mu.Lock()
		for s := range missing {
			if s <= w.found {
				delete(missing, s) // a reader found it while we looked
			}
		}
		w.polled, w.missing = start, missing
		if checkLow {
			w.lowAt = start
		}
		for wt := range w.waiters {
			err, bad := failed[wt.seq]
			if bad || (low != nil && wt.seq < low.Seq) {
				wt.err, wt.low = err, low
				delete(w.waiters, wt)
				close(wt.done)
			}
		}
		f.decideLocked(w, start)
		f.mu.Unlock()
	}
}

// poll looks for the entries the waiters need (and, having found one, for
// the next: its readers will want it as soon as they have read this one).
// Entries found wake their waiters through saw.
//
// The look-ahead is not needed for correctness: without it, each reader
// woken for entry seq would GET seq+1 itself when it comes back for it. It
// is what lets them not: one GET, shared by all of the partition's readers
// (those that return while it is in flight join it; later ones find seq+1
// in missing and wait without a request), where there would be one per
// reader that does not overlap another. With one reader it costs the GET
// the reader would have made, not an extra one.
func (f *followers) poll(w *tailWatch, seqs []int64, checkLow bool) (missing map[int64]bool, failed map[int64]error, low *lowDoc) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	missing, failed = map[int64]bool{}, map[int64]error{}
	slices.Sort(seqs)
	for i, seq := range seqs {
		for ahead := 0; ahead < 2; ahead++ {
			if i+1 < len(seqs) && seqs[i+1] == seq {
				break // polled as a waiter's own
			}
			_, err := f.l.cachedEntry(ctx, w.id, seq)
			if errors.Is(err, ErrNotFound) {
				missing[seq] = true
				break
			}
			if err != nil {
				failed[seq] = err
				break
			}
			f.saw(w.id, seq) // a cached entry was seen when fetched; say so again for late waiters
			seq++
		}
	}
	if checkLow {
		if d, err := f.l.low(ctx, w.k); err == nil {
			low = &d
		}
	}
	return missing, failed, low
}

// decideLocked moves a watch between active, armed and idle after a poll
// round that started at start and found nothing for its waiters.
func (f *followers) decideLocked(w *tailWatch, start time.Time) {
	idleAfter, half := f.l.cfg.IdleAfter, f.l.cfg.IdleAfter/2
	if len(w.waiters) == 0 {
		return
	}
	var quiet time.Time
	eligible := true
	for wt := range w.waiters {
		if wt.activeSince.After(quiet) {
			quiet = wt.activeSince
		}
		// Only a poll of its own entry that started IdleAfter after the
		// reader's last find lets a reader sleep.
		if !w.missing[wt.seq] {
			eligible = false
		}
	}
	eligible = eligible && start.After(quiet.Add(idleAfter))
	switch {
	case w.state == watchActive && start.After(quiet.Add(half)):
		f.setStateLocked(w, watchArmed)
	case w.state == watchArmed && eligible && f.wakeTrustedLocked(start.Add(-half)):
		f.setStateLocked(w, watchIdle)
	}
}

// wakeTrustedLocked reports whether every wake write that started after
// from will wake an idle watch: the watcher's first read ended before from
// (so such a write is not in its baseline) and no change was seen since
// from (one seen later wakes the watch, which is then idle).
func (f *followers) wakeTrustedLocked(from time.Time) bool {
	ws := &f.mu.wake
	return !ws.baseline.IsZero() && ws.baseline.Before(from) && ws.changedAt.Before(from)
}

// runWake is the wake watcher: it reads log/wake.json every WakePoll while
// any watch is armed or idle, and wakes the idle ones when it changes.
func (f *followers) runWake() {
	key := f.l.wakeKey()
	for {
		f.mu.Lock()
		if f.mu.wake.subs == 0 {
			// A new run needs a new baseline: writes while nobody read are unknown.
			f.mu.wake.running, f.mu.wake.baseline = false, time.Time{}
			f.mu.Unlock()
			return
		}
		f.mu.Unlock()
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		info, err := f.l.store.Stat(ctx, key)
		cancel()
		end := time.Now()
		if err == nil || errors.Is(err, ErrNotFound) {
			exists := err == nil
			f.mu.Lock()
			ws := &f.mu.wake
			switch {
			case ws.baseline.IsZero():
				ws.baseline, ws.version, ws.exists = end, info.Version, exists
			case exists != ws.exists || info.Version != ws.version:
				ws.version, ws.exists, ws.changedAt = info.Version, exists, end
				close(ws.changed)
				ws.changed = make(chan struct{})
			}
			f.mu.Unlock()
		}
		// A failed read changes nothing: a write it missed shows at the next one.
		time.Sleep(f.l.cfg.WakePoll)
	}
}

// wakeDoc is the body of log/wake.json. Only its version matters to
// readers; the body is unique per write so that every write changes it.
type wakeDoc struct {
	Writer string    `json:"writer"`
	N      int64     `json:"n"`
	Time   time.Time `json:"time"`
}

func (l *Log) wakeKey() string { return l.cfg.Prefix + "log/wake.json" }

// writeWake rewrites log/wake.json, waking idle readers of every process.
// Callers go on after a failure, which is counted: the commit it precedes
// does not depend on it, and idle readers fall back to their safety poll.
func (l *Log) writeWake(ctx context.Context) error {
	body, _ := json.Marshal(wakeDoc{Writer: l.cfg.WriterID, N: l.wakes.Add(1), Time: time.Now().UTC()})
	_, err := l.store.Put(ctx, l.wakeKey(), body)
	if err != nil {
		l.wakeFailures.Add(1)
	}
	return err
}

// WakeFailures counts wake writes that failed. Each leaves idle readers in
// other processes to notice the commit it announced at their safety poll
// (every 5 minutes) or at the next wake write.
func (l *Log) WakeFailures() int64 { return l.wakeFailures.Load() }
