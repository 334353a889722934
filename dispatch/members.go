package dispatch

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"hash/fnv"
	"os"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/sluicehq/sluice/objectlog"
)

// membersPrefix holds one heartbeat object per dispatch worker. "_" cannot
// start a topic name, so it never collides with a topic's work area.
const membersPrefix = "work/_members/"

// heartbeat is a worker's heartbeat object. Only its owner writes it; the
// content changes on every beat, and other workers watch for that change in
// a LIST (modification time and size), never reading the times inside:
// lease expiry is judged on the watcher's own clock.
type heartbeat struct {
	ID      string    `json:"id"`
	Host    string    `json:"host"`
	PID     int       `json:"pid"`
	Started time.Time `json:"started"`
	Beat    int64     `json:"beat"`
	TTLMs   int64     `json:"ttlMs"`
	Units   int       `json:"units"` // units held at the time of the beat (informational)
}

// sighting is what one worker knows of another from its LISTs.
type sighting struct {
	fingerprint string    // modification time and size; "" when absent from the LIST
	since       time.Time // when this worker first saw the current fingerprint (its own clock)
}

// membership is a worker's view of the others and its own heartbeat. The
// manager goroutine owns it; Valid is safe from any goroutine.
type membership struct {
	store *objectlog.Store
	clock Clock
	self  string
	ttl   time.Duration
	poll  time.Duration

	seen    map[string]*sighting // owned by the manager goroutine
	started time.Time
	// Owned by the heartbeat goroutine.
	beats    int64
	lastBeat time.Time // when the last successful beat write started

	mu struct {
		sync.Mutex
		validUntil time.Time // self-fencing: no new deliveries after this
	}
}

func newMembership(store *objectlog.Store, clock Clock, self string, ttl, poll time.Duration) *membership {
	return &membership{store: store, clock: clock, self: self, ttl: ttl, poll: poll, seen: map[string]*sighting{}, started: clock.Now()}
}

func (m *membership) key(id string) string { return membersPrefix + id + ".json" }

// beat rewrites this worker's heartbeat. Its leases are valid for a TTL
// from when the write started, less a poll of margin: another worker can
// judge it dead no sooner than a TTL after it saw this beat, which it saw
// after the write started.
func (m *membership) beat(ctx context.Context, units int) error {
	start := m.clock.Now()
	m.beats++
	host, _ := os.Hostname()
	data, err := json.Marshal(heartbeat{ID: m.self, Host: host, PID: os.Getpid(), Started: m.started, Beat: m.beats, TTLMs: m.ttl.Milliseconds(), Units: units})
	if err != nil {
		return err
	}
	if _, err := m.store.Put(ctx, m.key(m.self), data); err != nil {
		return fmt.Errorf("write heartbeat: %w", err)
	}
	m.lastBeat = start
	m.mu.Lock()
	m.mu.validUntil = start.Add(m.ttl - m.poll)
	m.mu.Unlock()
	return nil
}

// beatDue reports whether the heartbeat should be rewritten now: every
// poll while others are around (they are timing it), every TTL/2 alone. A
// worker that joins is seen at the next poll and from then on timed.
func (m *membership) beatDue(now time.Time, alone bool) bool {
	if m.lastBeat.IsZero() {
		return true
	}
	every := m.poll
	if alone {
		every = m.ttl / 2
	}
	return now.Sub(m.lastBeat) >= every-m.poll/10
}

// forceBeat makes the next beatDue true.
func (m *membership) forceBeat() { m.lastBeat = time.Time{} }

// Valid reports whether this worker may still start deliveries: its last
// heartbeat is recent enough that nobody can have taken its units.
func (m *membership) Valid() bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.clock.Now().Before(m.mu.validUntil)
}

// observe lists the heartbeats and updates the sightings. It returns
// whether a worker this one had not seen appeared (it then beats at once,
// so the newcomer times a fresh beat).
func (m *membership) observe(ctx context.Context) (newcomer bool, err error) {
	current := map[string]string{}
	err = m.store.ListAll(ctx, membersPrefix, func(o objectlog.ObjectInfo) error {
		id, ok := strings.CutSuffix(strings.TrimPrefix(o.Key, membersPrefix), ".json")
		if ok && id != "" {
			current[id] = fmt.Sprintf("%d/%d", o.ModTime.UnixNano(), o.Size)
		}
		return nil
	})
	if err != nil {
		return false, fmt.Errorf("list workers: %w", err)
	}
	// A sighting dates from when the answer arrived, not from when it was
	// asked for: a worker paused in between must not count the pause as
	// time it watched the others' heartbeats stand still.
	now := m.clock.Now()
	for id, fp := range current {
		s, ok := m.seen[id]
		if !ok {
			m.seen[id] = &sighting{fingerprint: fp, since: now}
			newcomer = newcomer || id != m.self
			continue
		}
		if s.fingerprint != fp {
			s.fingerprint, s.since = fp, now
		}
	}
	for id, s := range m.seen {
		if _, ok := current[id]; !ok && s.fingerprint != "" {
			s.fingerprint, s.since = "", now
		}
	}
	return newcomer, nil
}

// live returns the workers that take part in assignment: this one, and
// every other whose heartbeat changed within a TTL, sorted.
func (m *membership) live() []string {
	now := m.clock.Now()
	out := []string{m.self}
	for id, s := range m.seen {
		if id != m.self && s.fingerprint != "" && now.Sub(s.since) < m.ttl {
			out = append(out, id)
		}
	}
	sort.Strings(out)
	return out
}

// expired reports whether holder's lease may be taken over: its heartbeat
// (or its absence) has been unchanged for a whole TTL on this worker's
// clock. A holder never seen starts being timed now. When not expired, it
// also returns when it will be if nothing changes.
func (m *membership) expired(holder string) (bool, time.Time) {
	now := m.clock.Now()
	s, ok := m.seen[holder]
	if !ok {
		s = &sighting{since: now}
		m.seen[holder] = s
	}
	at := s.since.Add(m.ttl)
	return !now.Before(at), at
}

// nextExpiry is when the next watched worker expires if it does not beat.
func (m *membership) nextExpiry() (time.Time, bool) {
	var next time.Time
	for id, s := range m.seen {
		if id == m.self {
			continue
		}
		at := s.since.Add(m.ttl)
		if at.After(m.clock.Now()) && (next.IsZero() || at.Before(next)) {
			next = at
		}
	}
	return next, !next.IsZero()
}

// forgetDead drops sightings of workers gone for long, deleting their
// heartbeat objects so LISTs stay short. A worker that was only paused
// simply writes its heartbeat again.
func (m *membership) forgetDead(ctx context.Context) {
	now := m.clock.Now()
	for id, s := range m.seen {
		if id == m.self || now.Sub(s.since) < 10*m.ttl {
			continue
		}
		if s.fingerprint != "" {
			if err := m.store.Delete(ctx, m.key(id)); err != nil && !errors.Is(err, objectlog.ErrNotFound) {
				continue
			}
		}
		delete(m.seen, id)
	}
}

// leave deletes this worker's heartbeat (after it released its units).
func (m *membership) leave(ctx context.Context) error {
	m.mu.Lock()
	m.mu.validUntil = time.Time{}
	m.mu.Unlock()
	err := m.store.Delete(ctx, m.key(m.self))
	if errors.Is(err, objectlog.ErrNotFound) {
		return nil
	}
	return err
}

// assign spreads units over workers: consistent hashing with bounded
// loads. Each unit goes to the highest-ranked worker for it (rendezvous
// hashing) that has fewer than ceil(units/workers); every worker computes
// the same answer from the same view, and a change of workers moves few
// units.
func assign(units []unitKey, workers []string) map[unitKey]string {
	out := make(map[unitKey]string, len(units))
	if len(workers) == 0 {
		return out
	}
	sorted := append([]unitKey(nil), units...)
	sort.Slice(sorted, func(a, b int) bool { return sorted[a].String() < sorted[b].String() })
	limit := (len(units) + len(workers) - 1) / len(workers)
	load := make(map[string]int, len(workers))
	ranked := make([]string, len(workers))
	for _, u := range sorted {
		copy(ranked, workers)
		us := u.String()
		sort.Slice(ranked, func(a, b int) bool {
			ha, hb := rank(us, ranked[a]), rank(us, ranked[b])
			if ha != hb {
				return ha > hb
			}
			return ranked[a] < ranked[b]
		})
		for _, w := range ranked {
			if load[w] < limit {
				out[u] = w
				load[w]++
				break
			}
		}
	}
	return out
}

func rank(unit, worker string) uint64 {
	h := fnv.New64a()
	h.Write([]byte(unit))
	h.Write([]byte{0})
	h.Write([]byte(worker))
	// fnv's low bits mix poorly for similar inputs; finish with a mixer.
	x := h.Sum64()
	x ^= x >> 33
	x *= 0xff51afd7ed558ccd
	x ^= x >> 33
	return x
}
