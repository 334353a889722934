package dispatch

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/sluicehq/sluice/controlplane"
	"github.com/sluicehq/sluice/objectlog"
)

// SeekTarget says where a subscription's delivery restarts: the first event
// at or after Time, or the earliest retained event, or the tail.
type SeekTarget struct {
	Time     time.Time
	Earliest bool
	Latest   bool
}

func (t SeekTarget) String() string {
	switch {
	case t.Earliest:
		return "earliest"
	case t.Latest:
		return "latest"
	}
	return t.Time.UTC().Format(time.RFC3339Nano)
}

// PartitionPosition is one partition of a subscription: where its cursor
// is, where the log ends, and who works it.
type PartitionPosition struct {
	Partition int    `json:"partition"`
	Cursor    int64  `json:"cursor"`
	Tail      int64  `json:"tail"`
	Behind    int64  `json:"behind"`
	Holder    string `json:"holder,omitempty"`
	Epoch     int64  `json:"epoch,omitempty"`
	// Previous is the cursor before a seek moved it.
	Previous *int64 `json:"previous,omitempty"`
}

// Seek moves every partition cursor of a subscription to target. Each move
// is a compare-and-swap of the unit's lease that also frees it, so a worker
// holding the unit can no longer write its old cursor (it is fenced like
// any lost lease) and the unit restarts from the new cursor. Other
// subscriptions are not touched. The caller then records the seek in the
// registry (Registry.MarkSeek), which tells idle holders to restart too.
func Seek(ctx context.Context, l *objectlog.Log, topic, sub string, inst controlplane.SubscriptionInstance, partitions int, target SeekTarget) ([]PartitionPosition, error) {
	ls := leaseStore{store: l.Store(), clock: RealClock{}}
	out := make([]PartitionPosition, 0, partitions)
	for p := 0; p < partitions; p++ {
		rd, err := l.NewReader(topic, p)
		if err != nil {
			return nil, err
		}
		switch {
		case target.Earliest:
			err = rd.SeekEarliest(ctx)
		case target.Latest:
			err = rd.SeekLatest(ctx)
		default:
			err = rd.SeekTime(ctx, target.Time)
		}
		if err != nil {
			return nil, fmt.Errorf("find %s in partition %d: %w", target, p, err)
		}
		u := unitKey{Topic: topic, Sub: sub, UID: inst.UID, Partition: p}
		pos := PartitionPosition{Partition: p, Cursor: rd.Offset()}
		rd.Close() // only its position was needed
		for attempt := 1; ; attempt++ {
			cur, ver, found, err := ls.get(ctx, u)
			if err != nil {
				return nil, err
			}
			next := &lease{Topic: topic, Subscription: sub, SubscriptionUID: inst.UID, Partition: p, Epoch: 1, Cursor: pos.Cursor}
			if found {
				next.Epoch, next.TTLMs = cur.Epoch+1, cur.TTLMs
				if cur.SubscriptionUID == inst.UID {
					prev := cur.Cursor
					pos.Previous = &prev
				}
			}
			// No writer identity: a seek that finds the condition lost reads
			// the lease again and writes anew (writing its own write again
			// is harmless: the cursor is where the seek wants it).
			_, err = ls.put(ctx, u, next, ver, "\x00seek", next.Epoch)
			if err == nil {
				break
			}
			if !errors.Is(err, errLeaseLost) || attempt == 20 {
				return nil, fmt.Errorf("move the cursor of partition %d: %w", p, err)
			}
			// The holder wrote its cursor in between: read it again.
		}
		out = append(out, pos)
	}
	return out, nil
}

// Positions reports where each partition of a subscription stands.
func Positions(ctx context.Context, l *objectlog.Log, topic, sub string, inst controlplane.SubscriptionInstance, partitions int) ([]PartitionPosition, error) {
	ls := leaseStore{store: l.Store(), clock: RealClock{}}
	out := make([]PartitionPosition, 0, partitions)
	for p := 0; p < partitions; p++ {
		u := unitKey{Topic: topic, Sub: sub, UID: inst.UID, Partition: p}
		pos := PartitionPosition{Partition: p}
		e, ok, err := l.Tail(ctx, topic, p)
		if err != nil {
			return nil, fmt.Errorf("find the tail of partition %d: %w", p, err)
		}
		if ok {
			pos.Tail = e.EndOffset()
		}
		cur, _, found, err := ls.get(ctx, u)
		if err != nil {
			return nil, err
		}
		switch {
		case found && cur.SubscriptionUID == inst.UID:
			pos.Cursor, pos.Holder, pos.Epoch = cur.Cursor, cur.Holder, cur.Epoch
		case p < len(inst.StartOffsets):
			pos.Cursor = inst.StartOffsets[p]
		}
		pos.Behind = max(pos.Tail-pos.Cursor, 0)
		out = append(out, pos)
	}
	return out, nil
}
