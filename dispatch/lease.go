package dispatch

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/sluicehq/sluice/controlplane"
	"github.com/sluicehq/sluice/objectlog"
)

// unitKey names a unit of delivery work: one partition of one
// subscription (one creation of it: UID tells a re-created subscription
// of the same name apart).
type unitKey struct {
	Topic, Sub string
	UID        string
	Partition  int
}

func (u unitKey) String() string {
	return u.Topic + "/" + u.Sub + "/" + strconv.Itoa(u.Partition) + "#" + u.UID
}

// prefix is the unit's work area: its lease and its retry area.
func (u unitKey) prefix() string {
	return controlplane.WorkPrefix(u.Topic, u.Sub) + strconv.Itoa(u.Partition) + "/"
}

func (u unitKey) leaseKey() string    { return u.prefix() + "lease.json" }
func (u unitKey) retryPrefix() string { return u.prefix() + "retry/" }

// lease is a unit's lease object: who holds the unit, since which epoch,
// and the cursor (the offset of the first event not yet settled). Every
// write of it is a compare-and-swap on the version the writer last saw, so
// a worker that lost the unit can never write it again: that is the
// fencing. The holder renews nothing here: its heartbeat object is the
// renewal, so an idle unit costs no requests.
type lease struct {
	Topic           string    `json:"topic"`
	Subscription    string    `json:"subscription"`
	SubscriptionUID string    `json:"subscriptionUid"`
	Partition       int       `json:"partition"`
	Holder          string    `json:"holder"` // "" when released
	Epoch           int64     `json:"epoch"`  // +1 at every acquisition
	TTLMs           int64     `json:"ttlMs"`
	Cursor          int64     `json:"cursor"`
	Updated         time.Time `json:"updated"` // the writer's clock; informational only
}

// leaseState is a lease as a would-be holder sees it.
type leaseState int

const (
	leaseAbsent  leaseState = iota // no lease object: the unit was never worked
	leaseFree                      // released by its holder, or left by an earlier subscription of the name
	leaseHeld                      // held by a worker that is alive as far as we can tell
	leaseExpired                   // its holder's heartbeat was unchanged for a whole TTL on our clock
	leaseOurs                      // held by this worker
)

func (s leaseState) String() string {
	return [...]string{"absent", "free", "held", "expired", "ours"}[s]
}

// classify says what state a lease is in for worker self. expiredFn
// reports whether a holder may be taken over (membership.expired).
func classify(l *lease, found bool, u unitKey, self string, expiredFn func(string) (bool, time.Time)) (leaseState, time.Time) {
	switch {
	case !found:
		return leaseAbsent, time.Time{}
	case l.SubscriptionUID != u.UID || l.Holder == "":
		return leaseFree, time.Time{}
	case l.Holder == self:
		return leaseOurs, time.Time{}
	}
	if ok, at := expiredFn(l.Holder); !ok {
		return leaseHeld, at
	}
	return leaseExpired, time.Time{}
}

// errLeaseLost means a conditional lease write lost: another worker took
// the unit (or it was deleted with its subscription).
var errLeaseLost = errors.New("lease lost")

// leaseStore reads and writes lease objects.
type leaseStore struct {
	store *objectlog.Store
	clock Clock
}

func (ls leaseStore) get(ctx context.Context, u unitKey) (*lease, objectlog.Version, bool, error) {
	data, info, err := ls.store.Get(ctx, u.leaseKey())
	if errors.Is(err, objectlog.ErrNotFound) {
		return nil, "", false, nil
	}
	if err != nil {
		return nil, "", false, fmt.Errorf("read lease %s: %w", u, err)
	}
	var l lease
	if err := json.Unmarshal(data, &l); err != nil {
		return nil, "", false, fmt.Errorf("decode lease %s: %w", u, err)
	}
	return &l, info.Version, true, nil
}

// put writes l conditionally: create-if-absent when ver is "", else
// compare-and-swap from ver. self and epoch name the writer: the worker
// and the epoch it holds (for an acquisition, the epoch it acquires). A
// lost condition is errLeaseLost.
//
// A write can land although its writer saw it fail (a timeout, a cancelled
// context, or the store's retry of a request that had landed finding its
// own result). The writer's next write then finds a version it does not
// know. If that version is still the writer's own (same holder, same
// epoch: only the holder of an epoch writes with it, and every acquisition
// raises the epoch) the write goes ahead from it; anything else is a loss.
// Without this, a worker would think it lost (or never got) a lease that
// names it, and nobody would work the unit while that worker beats.
func (ls leaseStore) put(ctx context.Context, u unitKey, l *lease, ver objectlog.Version, self string, epoch int64) (objectlog.Version, error) {
	for attempt := 0; ; attempt++ {
		l.Updated = ls.clock.Now().UTC()
		data, err := json.Marshal(l)
		if err != nil {
			return "", err
		}
		var v objectlog.Version
		if ver == "" {
			v, err = ls.store.PutIfAbsent(ctx, u.leaseKey(), data)
		} else {
			v, err = ls.store.PutIfMatch(ctx, u.leaseKey(), data, ver)
		}
		if err == nil {
			return v, nil
		}
		if ver != "" && errors.Is(err, objectlog.ErrNotFound) {
			return "", fmt.Errorf("write lease %s: %w", u, errLeaseLost) // deleted with its subscription
		}
		if !errors.Is(err, objectlog.ErrPreconditionFailed) {
			return "", fmt.Errorf("write lease %s: %w", u, err)
		}
		cur, curVer, found, gerr := ls.get(ctx, u)
		if gerr != nil {
			// Cannot tell whose the lease is: lost, as far as this writer
			// knows (the dispatcher looks again before anyone is kept waiting).
			return "", fmt.Errorf("write lease %s: %w (and reading it failed: %v)", u, errLeaseLost, gerr)
		}
		if !found || cur.Holder != self || cur.Epoch != epoch || cur.SubscriptionUID != l.SubscriptionUID || attempt >= 3 {
			return "", fmt.Errorf("write lease %s: %w", u, errLeaseLost)
		}
		if again, _ := json.Marshal(cur); bytes.Equal(again, data) {
			return curVer, nil // this very write landed earlier
		}
		// An earlier write of ours landed unseen: write over it.
		ver = curVer
		l.Cursor = max(l.Cursor, cur.Cursor)
	}
}
