package controlplane

import (
	"context"
	"strings"
	"sync"
	"testing"

	"github.com/sluicehq/sluice/objectlog"
)

func TestAdminTokenGenerated(t *testing.T) {
	stores(t, func(t *testing.T, store *objectlog.Store) {
		ctx := context.Background()
		r := newRegistry(store, newClock())
		if r.CheckAdminToken(ctx, "anything") || r.CheckAdminToken(ctx, "") {
			t.Fatal("a token passed with none set")
		}
		tok, created, err := r.EnsureAdminToken(ctx, "")
		if err != nil || !created || !strings.HasPrefix(tok, AdminTokenPrefix) || len(tok) < 40 {
			t.Fatalf("EnsureAdminToken = %q, %v, %v", tok, created, err)
		}
		// Only the hash is stored.
		data, _, _ := store.Get(ctx, adminKey)
		if strings.Contains(string(data), tok) || strings.Contains(string(data), strings.TrimPrefix(tok, AdminTokenPrefix)) {
			t.Errorf("admin.json holds the token: %s", data)
		}
		// A fresh registry (another process) sees the same token.
		other := newRegistry(store, newClock())
		if !other.CheckAdminToken(ctx, tok) || other.CheckAdminToken(ctx, tok+"x") || other.CheckAdminToken(ctx, "") {
			t.Error("CheckAdminToken is wrong")
		}
		again, created, err := other.EnsureAdminToken(ctx, "")
		if err != nil || created || again != "" {
			t.Errorf("second EnsureAdminToken = %q, %v, %v", again, created, err)
		}
	})
}

func TestAdminTokenFromEnv(t *testing.T) {
	stores(t, func(t *testing.T, store *objectlog.Store) {
		ctx := context.Background()
		r := newRegistry(store, newClock())
		gen, _, _ := r.EnsureAdminToken(ctx, "")
		tok, created, err := r.EnsureAdminToken(ctx, "from-the-environment")
		if err != nil || created || tok != "from-the-environment" {
			t.Fatalf("EnsureAdminToken(env) = %q, %v, %v", tok, created, err)
		}
		if !r.CheckAdminToken(ctx, "from-the-environment") || r.CheckAdminToken(ctx, gen) {
			t.Error("the environment's token did not replace the generated one")
		}
		// Same token again: nothing written.
		base := store.Stats()
		if _, _, err := r.EnsureAdminToken(ctx, "from-the-environment"); err != nil {
			t.Fatal(err)
		}
		if d := store.Stats().Sub(base); d.Total() != 1 {
			t.Errorf("an unchanged token cost %s, want one get", d)
		}
	})
}

// Processes starting together: exactly one generates the token.
func TestAdminTokenRace(t *testing.T) {
	stores(t, func(t *testing.T, store *objectlog.Store) {
		ctx := context.Background()
		const n = 10
		var wg sync.WaitGroup
		tokens := make([]string, n)
		for i := 0; i < n; i++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				tok, created, err := newRegistry(store, newClock()).EnsureAdminToken(ctx, "")
				if err != nil {
					t.Error(err)
				}
				if created != (tok != "") {
					t.Errorf("created=%v with token %q", created, tok)
				}
				tokens[i] = tok
			}()
		}
		wg.Wait()
		var winners []string
		for _, tok := range tokens {
			if tok != "" {
				winners = append(winners, tok)
			}
		}
		if len(winners) != 1 {
			t.Fatalf("%d processes returned a token, want 1", len(winners))
		}
		if !newRegistry(store, newClock()).CheckAdminToken(ctx, winners[0]) {
			t.Error("the winner's token does not work")
		}
	})
}

// The hash is cached: another process's change is seen after 30 s, or at
// once when a watch has seen the generation move.
func TestAdminTokenCache(t *testing.T) {
	ctx := context.Background()
	store := memStore(t)
	c := newClock()
	r := newRegistry(store, c)
	if _, _, err := r.EnsureAdminToken(ctx, "old-token"); err != nil {
		t.Fatal(err)
	}
	base := store.Stats()
	for i := 0; i < 100; i++ {
		if !r.CheckAdminToken(ctx, "old-token") || r.CheckAdminToken(ctx, "wrong") {
			t.Fatal("check failed")
		}
	}
	if d := store.Stats().Sub(base); d.Total() != 0 {
		t.Errorf("cached checks cost %s", d)
	}

	other := newRegistry(store, newClock())
	if _, _, err := other.EnsureAdminToken(ctx, "new-token"); err != nil {
		t.Fatal(err)
	}
	if !r.CheckAdminToken(ctx, "old-token") {
		t.Error("cache expired early")
	}
	c.advance(adminCacheTTL)
	if r.CheckAdminToken(ctx, "old-token") || !r.CheckAdminToken(ctx, "new-token") {
		t.Error("the change is not seen after the TTL")
	}

	// With a watch running, a generation change refreshes at once.
	w := startWatch(t, r)
	w.tick()
	w.next(t)
	if _, _, err := other.EnsureAdminToken(ctx, "newest-token"); err != nil {
		t.Fatal(err)
	}
	w.tick()
	if !r.CheckAdminToken(ctx, "newest-token") {
		t.Error("a generation change did not refresh the cached hash")
	}
}
