package controlplane

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/sluicehq/sluice/objectlog"
)

// lossyDriver lands the next conditional put of a key, lets `others` run
// (other writers getting in first), then reports a timeout: the
// acknowledgement was lost. The Store retries, and its retry fails against
// the write that landed.
type lossyDriver struct {
	objectlog.Driver
	mu   sync.Mutex
	arm  string       // key whose next conditional put loses its ack
	then func() error // runs after that put landed
}

func (d *lossyDriver) Put(ctx context.Context, key string, data []byte, cond objectlog.Condition) (objectlog.Version, error) {
	v, err := d.Driver.Put(ctx, key, data, cond)
	d.mu.Lock()
	armed := err == nil && key == d.arm && (cond.IfAbsent || cond.IfMatch != "")
	then := d.then
	if armed {
		d.arm, d.then = "", nil
	}
	d.mu.Unlock()
	if !armed {
		return v, err
	}
	if then != nil {
		if err := then(); err != nil {
			return "", err
		}
	}
	return "", fmt.Errorf("%w: injected timeout after the put landed", objectlog.ErrTransient)
}

func (d *lossyDriver) loseNext(key string, then func() error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.arm, d.then = key, then
}

func lossyStore(t *testing.T) (*objectlog.Store, *lossyDriver) {
	d := &lossyDriver{Driver: objectlog.NewMemDriver()}
	return objectlog.NewStore(d, objectlog.RetryPolicy{MaxAttempts: 3, InitialInterval: time.Microsecond, MaxInterval: time.Microsecond}), d
}

// A write whose acknowledgement was lost is recognised as landed, even
// after later writes by others, up to keptWriteIDs of them; beyond that
// it is reported as a lost race (412), never as success.
func TestLostAcknowledgement(t *testing.T) {
	ctx := context.Background()
	for _, others := range []int{0, 1, keptWriteIDs - 1, keptWriteIDs} {
		t.Run(fmt.Sprintf("%d later writes", others), func(t *testing.T) {
			store, d := lossyStore(t)
			r := newRegistry(store, newClock())
			other := newRegistry(store, newClock())
			tp := topic("orders")
			tp.Properties.RetentionInDays = 1
			v := mustPutTopic(t, r, tp).Version

			d.loseNext(topicKey("orders"), func() error {
				for i := 0; i < others; i++ {
					cur, err := other.GetTopic(ctx, "orders")
					if err != nil {
						return err
					}
					cur.Properties.RetentionInDays += 100
					if _, _, err := other.PutTopic(ctx, cur, cur.Version, false); err != nil {
						return err
					}
				}
				return nil
			})
			tp.Properties.RetentionInDays = 2
			out, created, err := r.PutTopic(ctx, tp, v, false)
			want := 2 + 100*others
			if others < keptWriteIDs {
				if err != nil || created {
					t.Fatalf("PutTopic = %v (created %v), want success", err, created)
				}
				// The result is the topic now, with later writes.
				if out.Properties.RetentionInDays != want {
					t.Errorf("returned retention %d, want %d", out.Properties.RetentionInDays, want)
				}
			} else if status(err) != 412 {
				t.Fatalf("PutTopic = %v, want 412 once the write is out of the history", err)
			}
			if got, _ := r.GetTopic(ctx, "orders"); got.Properties.RetentionInDays != want {
				t.Errorf("stored retention %d, want %d", got.Properties.RetentionInDays, want)
			}
		})
	}

	t.Run("create", func(t *testing.T) {
		store, d := lossyStore(t)
		r := newRegistry(store, newClock())
		d.loseNext(topicKey("orders"), nil)
		if _, created, err := r.PutTopic(ctx, topic("orders"), "", true); err != nil || !created {
			t.Errorf("create only with a lost ack: created=%v, %v", created, err)
		}
		d.loseNext(topicKey("orders"), nil)
		if _, err := r.RegenerateKey(ctx, "orders", "key1"); err != nil {
			t.Errorf("regenerate with a lost ack: %v", err)
		}
		mustPutTopic(t, r, topic("orders"))
		d.loseNext(subscriptionKey("orders", "audit"), nil)
		if _, created, err := r.PutSubscription(ctx, "orders", subscription("audit"), "", true); err != nil || !created {
			t.Errorf("create subscription with a lost ack: created=%v, %v", created, err)
		}
		d.loseNext(adminKey, nil)
		if tok, created, err := r.EnsureAdminToken(ctx, ""); err != nil || !created || !r.CheckAdminToken(ctx, tok) {
			t.Errorf("admin token with a lost ack: created=%v, %v", created, err)
		}
	})
}

// Many writers on a store that loses some acknowledgements and answers
// 409 to some conditional writes: If-Match updates lose nothing and apply
// nothing twice.
func TestUpdatesOnAFaultyStore(t *testing.T) {
	fault := objectlog.NewFaultDriver(objectlog.NewMemDriver(), objectlog.FaultConfig{Seed: 7, LostAck: 0.1, Conflict: 0.05})
	store := objectlog.NewStore(fault, objectlog.RetryPolicy{MaxAttempts: 20, InitialInterval: time.Microsecond, MaxInterval: 10 * time.Microsecond})
	ctx := context.Background()
	r := newRegistry(store, newClock())
	tp := topic("orders")
	tp.Properties.RetentionInDays = 1
	mustPutTopic(t, r, tp)

	const writers, each = 4, 10
	var wg sync.WaitGroup
	for w := 0; w < writers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < each; i++ {
				for {
					cur, err := r.GetTopic(ctx, "orders")
					if err != nil {
						t.Error(err)
						return
					}
					cur.Properties.RetentionInDays++
					_, _, err = r.PutTopic(ctx, cur, cur.Version, false)
					if err == nil {
						break
					}
					if !errors.Is(err, objectlog.ErrPreconditionFailed) {
						t.Error(err)
						return
					}
				}
			}
		}()
	}
	wg.Wait()
	got, err := r.GetTopic(ctx, "orders")
	if err != nil {
		t.Fatal(err)
	}
	if want := 1 + writers*each; got.Properties.RetentionInDays != want {
		t.Errorf("retentionInDays = %d, want %d", got.Properties.RetentionInDays, want)
	}
	if fault.Injected() == 0 {
		t.Error("no faults were injected")
	}
}
