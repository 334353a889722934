package objectlog

import (
	"context"
	"fmt"
	"math/rand"
	"sync"
	"sync/atomic"
	"time"
)

// FaultConfig says which faults a FaultDriver injects. Probabilities are per
// request, from a seeded source, so a failing run can be replayed.
type FaultConfig struct {
	Seed int64
	// SlowDown: the request fails with ErrTransient (503 SlowDown) before it
	// reaches the store.
	SlowDown float64
	// Conflict: a conditional put fails with ErrConflict (S3 409) before it
	// reaches the store.
	Conflict float64
	// LostAck: a write that succeeded is reported as ErrTransient, as when
	// the response times out after the store applied the write.
	LostAck float64
	// Latency is added to every request, plus up to Jitter more.
	Latency, Jitter time.Duration
	// Hook, if set, runs before every request; a non-nil error is returned
	// instead of doing the request. Tests use it for targeted faults
	// ("fail every manifest commit").
	Hook func(op Op, key string) error
}

// FaultDriver wraps a Driver and injects faults; the log's tests use it to
// show that the invariants hold on an unreliable store.
type FaultDriver struct {
	inner Driver
	cfg   FaultConfig
	mu    struct {
		sync.Mutex
		rng *rand.Rand
	}
	injected atomic.Int64
}

var _ Driver = (*FaultDriver)(nil)

// NewFaultDriver wraps inner.
func NewFaultDriver(inner Driver, cfg FaultConfig) *FaultDriver {
	f := &FaultDriver{inner: inner, cfg: cfg}
	f.mu.rng = rand.New(rand.NewSource(cfg.Seed))
	return f
}

// Unwrap returns the wrapped driver, to look at the store without faults.
func (f *FaultDriver) Unwrap() Driver { return f.inner }

// Injected is how many faults were injected so far.
func (f *FaultDriver) Injected() int64 { return f.injected.Load() }

func (f *FaultDriver) roll(p float64) bool {
	if p <= 0 {
		return false
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.mu.rng.Float64() < p
}

func (f *FaultDriver) delay(ctx context.Context) error {
	d := f.cfg.Latency
	if f.cfg.Jitter > 0 {
		f.mu.Lock()
		d += time.Duration(f.mu.rng.Int63n(int64(f.cfg.Jitter)))
		f.mu.Unlock()
	}
	if d <= 0 {
		return nil
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return fmt.Errorf("%w: %v", ErrTransient, ctx.Err())
	case <-t.C:
		return nil
	}
}

// before injects the faults that happen before a request reaches the store.
func (f *FaultDriver) before(ctx context.Context, op Op, key string) error {
	if err := f.delay(ctx); err != nil {
		return err
	}
	if f.cfg.Hook != nil {
		if err := f.cfg.Hook(op, key); err != nil {
			f.injected.Add(1)
			return err
		}
	}
	if f.roll(f.cfg.SlowDown) {
		f.injected.Add(1)
		return fmt.Errorf("%w: injected 503 SlowDown on %s %s", ErrTransient, op, key)
	}
	return nil
}

func (f *FaultDriver) Get(ctx context.Context, key string) ([]byte, ObjectInfo, error) {
	if err := f.before(ctx, OpGet, key); err != nil {
		return nil, ObjectInfo{}, err
	}
	return f.inner.Get(ctx, key)
}

func (f *FaultDriver) GetRange(ctx context.Context, key string, offset, length int64) ([]byte, error) {
	if err := f.before(ctx, OpGetRange, key); err != nil {
		return nil, err
	}
	return f.inner.GetRange(ctx, key, offset, length)
}

func (f *FaultDriver) Stat(ctx context.Context, key string) (ObjectInfo, error) {
	if err := f.before(ctx, OpStat, key); err != nil {
		return ObjectInfo{}, err
	}
	return f.inner.Stat(ctx, key)
}

func (f *FaultDriver) Put(ctx context.Context, key string, data []byte, cond Condition) (Version, error) {
	op := OpPut
	switch {
	case cond.IfAbsent:
		op = OpPutIfAbsnt
	case cond.IfMatch != "":
		op = OpPutIfMatch
	}
	if err := f.before(ctx, op, key); err != nil {
		return "", err
	}
	if op != OpPut && f.roll(f.cfg.Conflict) {
		f.injected.Add(1)
		return "", fmt.Errorf("%w: injected 409 ConditionalRequestConflict on %s", ErrConflict, key)
	}
	v, err := f.inner.Put(ctx, key, data, cond)
	if err == nil && f.roll(f.cfg.LostAck) {
		f.injected.Add(1)
		return "", fmt.Errorf("%w: injected timeout after %s %s succeeded", ErrTransient, op, key)
	}
	return v, err
}

func (f *FaultDriver) List(ctx context.Context, prefix, pageToken string, pageSize int) (ListPage, error) {
	if err := f.before(ctx, OpList, prefix); err != nil {
		return ListPage{}, err
	}
	return f.inner.List(ctx, prefix, pageToken, pageSize)
}

func (f *FaultDriver) Delete(ctx context.Context, key string) error {
	if err := f.before(ctx, OpDelete, key); err != nil {
		return err
	}
	err := f.inner.Delete(ctx, key)
	if err == nil && f.roll(f.cfg.LostAck) {
		f.injected.Add(1)
		return fmt.Errorf("%w: injected timeout after delete %s succeeded", ErrTransient, key)
	}
	return err
}

func (f *FaultDriver) Close() error { return f.inner.Close() }
