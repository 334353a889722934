package controlplane

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sluicehq/sluice/apierr"
	"github.com/sluicehq/sluice/objectlog"
	"github.com/sluicehq/sluice/schemas"
)

// clock is a settable wall clock.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func newClock() *clock { return &clock{t: time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)} }

func (c *clock) now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

// stores runs f against a memory and a directory store.
func stores(t *testing.T, f func(t *testing.T, store *objectlog.Store)) {
	for _, kind := range []string{"mem", "file"} {
		t.Run(kind, func(t *testing.T) {
			url := "mem://"
			if kind == "file" {
				url = "file://" + t.TempDir()
			}
			store, err := objectlog.Open(context.Background(), url)
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { _ = store.Close() })
			f(t, store)
		})
	}
}

func newRegistry(store *objectlog.Store, c *clock) *Registry {
	r := New(store, c.now)
	r.Endpoint = func(topic string) string { return "https://sluice.example/topics/" + topic + "/api/events" }
	return r
}

func topic(name string) schemas.Topic { return schemas.Topic{Name: name} }

func subscription(name string) schemas.Subscription {
	var s schemas.Subscription
	s.Name = name
	s.Properties.Destination.EndpointType = schemas.EndpointTypeWebHook
	s.Properties.Destination.Properties.EndpointURL = "https://hooks.example/" + name
	return s
}

// status is the HTTP status err is answered with.
func status(err error) int {
	if err == nil {
		return http.StatusOK
	}
	return apierr.From(err).Status
}

func mustPutTopic(t *testing.T, r *Registry, tp schemas.Topic) schemas.Topic {
	t.Helper()
	out, _, err := r.PutTopic(context.Background(), tp, "", false)
	if err != nil {
		t.Fatalf("PutTopic(%s): %v", tp.Name, err)
	}
	return out
}

func mustPutSub(t *testing.T, r *Registry, topic string, s schemas.Subscription) schemas.Subscription {
	t.Helper()
	out, _, err := r.PutSubscription(context.Background(), topic, s, "", false)
	if err != nil {
		t.Fatalf("PutSubscription(%s/%s): %v", topic, s.Name, err)
	}
	return out
}

func TestTopicRoundTrip(t *testing.T) {
	stores(t, func(t *testing.T, store *objectlog.Store) {
		ctx := context.Background()
		c := newClock()
		r := newRegistry(store, c)

		created, isNew, err := r.PutTopic(ctx, topic("Orders"), "", false)
		if err != nil || !isNew {
			t.Fatalf("create: %v, created=%v", err, isNew)
		}
		p := created.Properties
		if created.Version == "" || p.Partitions != schemas.DefaultPartitions || p.RetentionInDays != schemas.DefaultRetentionInDays ||
			p.InputSchema != schemas.CloudEventSchemaV1_0 || p.ProvisioningState != ProvisioningSucceeded ||
			p.CreatedAt == nil || !p.CreatedAt.Equal(c.now()) ||
			p.Endpoint != "https://sluice.example/topics/Orders/api/events" {
			t.Errorf("created topic = %+v", created)
		}

		// Names are case-insensitive; the original case is kept.
		got, err := r.GetTopic(ctx, "orders")
		if err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(got, created) {
			t.Errorf("GetTopic = %+v, want %+v", got, created)
		}

		c.advance(time.Hour)
		upd := topic("ORDERS")
		upd.Properties.RetentionInDays = 30
		replaced, isNew, err := r.PutTopic(ctx, upd, "", false)
		if err != nil || isNew {
			t.Fatalf("replace: %v, created=%v", err, isNew)
		}
		if replaced.Name != "Orders" || replaced.Properties.RetentionInDays != 30 ||
			replaced.Version == created.Version || !replaced.Properties.CreatedAt.Equal(*created.Properties.CreatedAt) {
			t.Errorf("replaced topic = %+v", replaced)
		}

		mustPutTopic(t, r, topic("alpha"))
		mustPutTopic(t, r, topic("Zulu"))
		list, err := r.ListTopics(ctx)
		if err != nil {
			t.Fatal(err)
		}
		var names []string
		for _, tp := range list {
			names = append(names, tp.Name)
			if tp.Version == "" || tp.Properties.Endpoint == "" {
				t.Errorf("listed topic lacks etag or endpoint: %+v", tp)
			}
		}
		if strings.Join(names, ",") != "alpha,Orders,Zulu" {
			t.Errorf("ListTopics = %v", names)
		}

		if _, err := r.GetTopic(ctx, "missing"); status(err) != 404 || !errors.Is(err, objectlog.ErrNotFound) {
			t.Errorf("GetTopic(missing) = %v", err)
		}
		if _, err := r.GetTopic(ctx, "a/b"); status(err) != 400 {
			t.Errorf("GetTopic(a/b) = %v, want 400", err)
		}
	})
}

func TestTopicValidation(t *testing.T) {
	r := newRegistry(memStore(t), newClock())
	bad := topic("orders")
	bad.Properties.RetentionInDays = 5000
	_, _, err := r.PutTopic(context.Background(), bad, "", false)
	var ve *schemas.ValidationError
	if !errors.As(err, &ve) || ve.Errors[0].Field != "properties.retentionInDays" {
		t.Errorf("PutTopic with retention 5000 = %v", err)
	}
	if _, _, err := r.PutTopic(context.Background(), topic("x"), "", false); status(err) != 400 {
		t.Errorf("PutTopic with name x = %v", err)
	}
	if n := countObjects(t, r.store, "config/"); n != 0 {
		t.Errorf("%d objects stored by rejected requests", n)
	}
}

func memStore(t *testing.T) *objectlog.Store {
	t.Helper()
	store, err := objectlog.Open(context.Background(), "mem://")
	if err != nil {
		t.Fatal(err)
	}
	return store
}

func countObjects(t *testing.T, store *objectlog.Store, prefix string) int {
	t.Helper()
	n := 0
	if err := store.ListAll(context.Background(), prefix, func(objectlog.ObjectInfo) error { n++; return nil }); err != nil {
		t.Fatal(err)
	}
	return n
}

func TestTopicIfMatch(t *testing.T) {
	stores(t, func(t *testing.T, store *objectlog.Store) {
		ctx := context.Background()
		r := newRegistry(store, newClock())
		v0 := mustPutTopic(t, r, topic("orders")).Version

		// Two updates from the same etag: the second loses.
		a := topic("orders")
		a.Properties.RetentionInDays = 10
		first, _, err := r.PutTopic(ctx, a, v0, false)
		if err != nil {
			t.Fatalf("first update: %v", err)
		}
		b := topic("orders")
		b.Properties.RetentionInDays = 20
		_, _, err = r.PutTopic(ctx, b, v0, false)
		if status(err) != 412 || !errors.Is(err, objectlog.ErrPreconditionFailed) {
			t.Fatalf("second update from the same etag = %v, want 412", err)
		}
		if got, _ := r.GetTopic(ctx, "orders"); got.Properties.RetentionInDays != 10 || got.Version != first.Version {
			t.Errorf("after the lost update: %+v", got)
		}
		// The current etag works; "*" means any existing version.
		if _, _, err := r.PutTopic(ctx, b, first.Version, false); err != nil {
			t.Errorf("update with the current etag: %v", err)
		}
		if _, _, err := r.PutTopic(ctx, a, "*", false); err != nil {
			t.Errorf("update with If-Match *: %v", err)
		}
		// If-Match on a missing topic fails and creates nothing.
		if _, _, err := r.PutTopic(ctx, topic("other"), "*", false); status(err) != 412 {
			t.Errorf("If-Match * on a missing topic = %v, want 412", err)
		}
		if _, err := r.GetTopic(ctx, "other"); status(err) != 404 {
			t.Errorf("a failed If-Match created the topic: %v", err)
		}
	})
}

func TestTopicCreateOnly(t *testing.T) {
	stores(t, func(t *testing.T, store *objectlog.Store) {
		r := newRegistry(store, newClock())
		if _, created, err := r.PutTopic(context.Background(), topic("orders"), "", true); err != nil || !created {
			t.Fatalf("create only: %v %v", created, err)
		}
		if _, _, err := r.PutTopic(context.Background(), topic("Orders"), "", true); status(err) != 409 {
			t.Errorf("create only of an existing topic = %v, want 409", err)
		}
	})
}

func TestPartitionsImmutable(t *testing.T) {
	stores(t, func(t *testing.T, store *objectlog.Store) {
		ctx := context.Background()
		r := newRegistry(store, newClock())
		tp := topic("orders")
		tp.Properties.Partitions = 8
		mustPutTopic(t, r, tp)

		tp.Properties.Partitions = 16
		_, _, err := r.PutTopic(ctx, tp, "", false)
		e := apierr.From(err)
		if e.Status != 400 || len(e.Details) != 1 || !strings.HasPrefix(e.Details[0].Message, "properties.partitions: ") {
			t.Errorf("changing partitions = %v (%+v), want 400 naming properties.partitions", err, e)
		}
		// Leaving partitions out keeps them.
		out, _, err := r.PutTopic(ctx, topic("orders"), "", false)
		if err != nil || out.Properties.Partitions != 8 {
			t.Errorf("replace without partitions = %+v, %v", out.Properties, err)
		}
	})
}

func TestKeysAndRegenerate(t *testing.T) {
	stores(t, func(t *testing.T, store *objectlog.Store) {
		ctx := context.Background()
		r := newRegistry(store, newClock())
		before := mustPutTopic(t, r, topic("orders"))
		k, err := r.Keys(ctx, "orders")
		if err != nil || k.Key1 == "" || k.Key2 == "" || k.Key1 == k.Key2 {
			t.Fatalf("Keys = %+v, %v", k, err)
		}
		// Replacing the topic keeps its keys.
		mustPutTopic(t, r, topic("orders"))
		if k2, _ := r.Keys(ctx, "orders"); k2 != k {
			t.Errorf("keys changed on replace: %+v -> %+v", k, k2)
		}

		n, err := r.RegenerateKey(ctx, "orders", "key1")
		if err != nil {
			t.Fatal(err)
		}
		if n.Key1 == k.Key1 || n.Key2 != k.Key2 {
			t.Errorf("regenerate key1: %+v -> %+v", k, n)
		}
		if got, _ := r.Keys(ctx, "orders"); got != n {
			t.Errorf("stored keys %+v, returned %+v", got, n)
		}
		n2, err := r.RegenerateKey(ctx, "orders", "key2")
		if err != nil || n2.Key1 != n.Key1 || n2.Key2 == n.Key2 {
			t.Errorf("regenerate key2: %+v -> %+v, %v", n, n2, err)
		}
		if after, _ := r.GetTopic(ctx, "orders"); after.Version == before.Version {
			t.Error("etag unchanged by key regeneration")
		}
		if _, err := r.RegenerateKey(ctx, "orders", "key3"); status(err) != 400 {
			t.Errorf("regenerate key3 = %v, want 400", err)
		}
		if _, err := r.RegenerateKey(ctx, "missing", "key1"); status(err) != 404 {
			t.Errorf("regenerate on a missing topic = %v, want 404", err)
		}
		// Keys never appear in the topic resource.
		if got, _ := r.GetTopic(ctx, "orders"); strings.Contains(fmt.Sprintf("%+v", got), n2.Key1) {
			t.Error("GetTopic shows a key")
		}
	})
}

func TestSubscriptionRoundTrip(t *testing.T) {
	stores(t, func(t *testing.T, store *objectlog.Store) {
		ctx := context.Background()
		r := newRegistry(store, newClock())
		if _, _, err := r.PutSubscription(ctx, "orders", subscription("audit"), "", false); status(err) != 404 {
			t.Fatalf("subscription of a missing topic = %v, want 404", err)
		}
		tp := topic("orders")
		tp.Properties.InputSchema = schemas.EventGridSchema
		mustPutTopic(t, r, tp)

		s, created, err := r.PutSubscription(ctx, "Orders", subscription("Audit"), "", false)
		if err != nil || !created {
			t.Fatalf("create: %v %v", created, err)
		}
		if s.Topic != "orders" || s.Version == "" || s.Properties.EventDeliverySchema != schemas.EventGridSchema ||
			!strings.HasPrefix(s.Properties.SigningSecret, schemas.SigningSecretPrefix) ||
			s.Properties.ProvisioningState != ProvisioningSucceeded || s.Properties.RetryPolicy == nil {
			t.Errorf("created subscription = %+v", s)
		}
		got, err := r.GetSubscription(ctx, "orders", "audit", true)
		if err != nil || !reflect.DeepEqual(got, s) {
			t.Errorf("GetSubscription = %+v, %v; want %+v", got, err, s)
		}

		// Two updates from the same etag: the second loses.
		upd := subscription("audit")
		upd.Properties.Labels = []string{"one"}
		if _, _, err := r.PutSubscription(ctx, "orders", upd, s.Version, false); err != nil {
			t.Fatalf("update: %v", err)
		}
		upd.Properties.Labels = []string{"two"}
		if _, _, err := r.PutSubscription(ctx, "orders", upd, s.Version, false); status(err) != 412 {
			t.Errorf("stale update = %v, want 412", err)
		}
		if _, _, err := r.PutSubscription(ctx, "orders", upd, "", true); status(err) != 409 {
			t.Errorf("create only of an existing subscription = %v, want 409", err)
		}
		// The signing secret survives a replace that leaves it out.
		if got, _ := r.GetSubscription(ctx, "orders", "audit", true); got.Properties.SigningSecret != s.Properties.SigningSecret {
			t.Errorf("signing secret changed on replace")
		}

		mustPutSub(t, r, "orders", subscription("billing"))
		list, err := r.ListSubscriptions(ctx, "orders")
		if err != nil || len(list) != 2 || list[0].Name != "Audit" || list[1].Name != "billing" {
			t.Errorf("ListSubscriptions = %+v, %v", list, err)
		}
		if _, err := r.ListSubscriptions(ctx, "missing"); status(err) != 404 {
			t.Errorf("ListSubscriptions(missing) = %v, want 404", err)
		}

		bad := subscription("bad")
		bad.Properties.Destination.Properties.EndpointURL = "ftp://x"
		if _, _, err := r.PutSubscription(ctx, "orders", bad, "", false); status(err) != 400 {
			t.Errorf("bad endpoint = %v, want 400", err)
		}

		if err := r.DeleteSubscription(ctx, "orders", "audit"); err != nil {
			t.Fatal(err)
		}
		if _, err := r.GetSubscription(ctx, "orders", "audit", false); status(err) != 404 {
			t.Errorf("GetSubscription after delete = %v", err)
		}
		if err := r.DeleteSubscription(ctx, "orders", "audit"); status(err) != 404 || !errors.Is(err, objectlog.ErrNotFound) {
			t.Errorf("second delete = %v, want 404", err)
		}
	})
}

func TestSecretsRedacted(t *testing.T) {
	stores(t, func(t *testing.T, store *objectlog.Store) {
		ctx := context.Background()
		r := newRegistry(store, newClock())
		mustPutTopic(t, r, topic("orders"))
		s := subscription("audit")
		s.Properties.Destination.Properties.DeliveryAttributeMappings = []schemas.DeliveryAttributeMapping{
			{Name: "X-Api-Key", Type: schemas.DeliveryAttributeStatic, Properties: schemas.DeliveryAttributeProperties{Value: "hunter2", IsSecret: true}},
			{Name: "X-Tenant", Type: schemas.DeliveryAttributeStatic, Properties: schemas.DeliveryAttributeProperties{Value: "acme"}},
		}
		created := mustPutSub(t, r, "orders", s)
		secret := created.Properties.SigningSecret
		if secret == "" || created.Properties.Destination.Properties.DeliveryAttributeMappings[0].Properties.Value != "hunter2" {
			t.Fatalf("create does not show the secrets: %+v", created)
		}
		// The caller's slice is not modified.
		if s.Properties.Destination.Properties.DeliveryAttributeMappings[0].Properties.Value != "hunter2" {
			t.Fatal("PutSubscription modified its argument")
		}

		check := func(what string, got schemas.Subscription) {
			t.Helper()
			txt := fmt.Sprintf("%+v", got)
			if strings.Contains(txt, "hunter2") || strings.Contains(txt, secret) {
				t.Errorf("%s shows a secret: %s", what, txt)
			}
			if !strings.Contains(txt, "acme") {
				t.Errorf("%s hides a value that is not secret: %s", what, txt)
			}
		}
		redacted, err := r.GetSubscription(ctx, "orders", "audit", false)
		if err != nil {
			t.Fatal(err)
		}
		check("GetSubscription", redacted)
		list, _ := r.ListSubscriptions(ctx, "orders")
		check("ListSubscriptions", list[0])

		// GET, edit, PUT back: the secrets are kept.
		redacted.Properties.Labels = []string{"edited"}
		replaced, _, err := r.PutSubscription(ctx, "orders", redacted, redacted.Version, false)
		if err != nil {
			t.Fatalf("PUT back a redacted subscription: %v", err)
		}
		check("PutSubscription (replace)", replaced)
		full, err := r.GetSubscription(ctx, "orders", "audit", true)
		if err != nil || full.Properties.SigningSecret != secret ||
			full.Properties.Destination.Properties.DeliveryAttributeMappings[0].Properties.Value != "hunter2" ||
			full.Properties.Labels[0] != "edited" {
			t.Errorf("GetSubscription with secrets after PUT back = %+v, %v", full, err)
		}
		snap, err := r.Snapshot(ctx)
		if err != nil {
			t.Fatal(err)
		}
		tc, _ := snap.Topic("orders")
		if tc.Subscriptions[0].Properties.SigningSecret != secret {
			t.Error("the snapshot lacks the signing secret")
		}
	})
}

func TestDeleteTopicCascades(t *testing.T) {
	stores(t, func(t *testing.T, store *objectlog.Store) {
		ctx := context.Background()
		r := newRegistry(store, newClock())
		mustPutTopic(t, r, topic("orders"))
		mustPutTopic(t, r, topic("other"))
		mustPutSub(t, r, "orders", subscription("a-sub"))
		mustPutSub(t, r, "orders", subscription("b-sub"))
		mustPutSub(t, r, "other", subscription("c-sub"))

		if err := r.DeleteTopic(ctx, "Orders"); err != nil {
			t.Fatal(err)
		}
		if _, err := r.GetTopic(ctx, "orders"); status(err) != 404 {
			t.Errorf("GetTopic after delete = %v", err)
		}
		if n := countObjects(t, store, subscriptionPrefix("orders")); n != 0 {
			t.Errorf("%d subscription objects left", n)
		}
		if list, err := r.ListSubscriptions(ctx, "other"); err != nil || len(list) != 1 {
			t.Errorf("another topic's subscriptions: %+v, %v", list, err)
		}
		// A recreated topic starts with no subscriptions.
		mustPutTopic(t, r, topic("orders"))
		if list, err := r.ListSubscriptions(ctx, "orders"); err != nil || len(list) != 0 {
			t.Errorf("recreated topic has subscriptions: %+v, %v", list, err)
		}
		if err := r.DeleteTopic(ctx, "missing"); status(err) != 404 {
			t.Errorf("DeleteTopic(missing) = %v, want 404", err)
		}
	})
}

// A delete that stopped after the topic object leaves subscription objects
// behind: they are invisible, even to a topic recreated with the name, and
// are overwritten or cleared later.
func TestOrphanSubscriptionsInvisible(t *testing.T) {
	stores(t, func(t *testing.T, store *objectlog.Store) {
		ctx := context.Background()
		r := newRegistry(store, newClock())
		mustPutTopic(t, r, topic("orders"))
		mustPutSub(t, r, "orders", subscription("a-sub"))
		mustPutSub(t, r, "orders", subscription("b-sub"))
		if err := store.Delete(ctx, topicKey("orders")); err != nil { // the crash
			t.Fatal(err)
		}
		mustPutTopic(t, r, topic("orders"))
		if list, _ := r.ListSubscriptions(ctx, "orders"); len(list) != 0 {
			t.Errorf("orphans listed: %+v", list)
		}
		if _, err := r.GetSubscription(ctx, "orders", "a-sub", false); status(err) != 404 {
			t.Errorf("orphan returned: %v", err)
		}
		snap, _ := r.Snapshot(ctx)
		if tc, _ := snap.Topic("orders"); len(tc.Subscriptions) != 0 {
			t.Errorf("orphans in the snapshot: %+v", tc.Subscriptions)
		}
		// Create-only overwrites an orphan: it is absent.
		if _, created, err := r.PutSubscription(ctx, "orders", subscription("a-sub"), "", true); err != nil || !created {
			t.Errorf("create over an orphan: %v %v", created, err)
		}
		// Deleting the orphan b-sub says it was not there, and removes it.
		if err := r.DeleteSubscription(ctx, "orders", "b-sub"); status(err) != 404 {
			t.Errorf("delete orphan = %v, want 404", err)
		}
		if n := countObjects(t, store, subscriptionPrefix("orders")); n != 1 {
			t.Errorf("%d subscription objects, want 1", n)
		}
	})
}

// Many writers each add to retentionInDays with an If-Match retry loop;
// none of their updates may be lost.
func TestConcurrentUpdatesLoseNothing(t *testing.T) {
	stores(t, func(t *testing.T, store *objectlog.Store) {
		ctx := context.Background()
		r := newRegistry(store, newClock())
		tp := topic("orders")
		tp.Properties.RetentionInDays = 1
		mustPutTopic(t, r, tp)

		const writers, each = 8, 10
		var wg sync.WaitGroup
		errs := make(chan error, writers)
		for w := 0; w < writers; w++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for i := 0; i < each; i++ {
					for {
						cur, err := r.GetTopic(ctx, "orders")
						if err != nil {
							errs <- err
							return
						}
						cur.Properties.RetentionInDays++
						_, _, err = r.PutTopic(ctx, cur, cur.Version, false)
						if err == nil {
							break
						}
						if status(err) != 412 {
							errs <- err
							return
						}
					}
				}
			}()
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			t.Fatal(err)
		}
		got, _ := r.GetTopic(ctx, "orders")
		if want := 1 + writers*each; got.Properties.RetentionInDays != want {
			t.Errorf("retentionInDays = %d, want %d: updates were lost", got.Properties.RetentionInDays, want)
		}
	})
}

// Unconditional create-or-replace from many goroutines: every call
// succeeds (retrying internally), exactly one creates.
func TestConcurrentCreateOrReplace(t *testing.T) {
	stores(t, func(t *testing.T, store *objectlog.Store) {
		ctx := context.Background()
		r := newRegistry(store, newClock())
		const n = 12
		var wg sync.WaitGroup
		var mu sync.Mutex
		createdCount := 0
		for i := 0; i < n; i++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				tp := topic("orders")
				tp.Properties.RetentionInDays = 1 + i
				_, created, err := r.PutTopic(ctx, tp, "", false)
				if err != nil {
					t.Error(err)
				}
				mu.Lock()
				defer mu.Unlock()
				if created {
					createdCount++
				}
			}()
		}
		wg.Wait()
		if createdCount != 1 {
			t.Errorf("%d calls created the topic, want 1", createdCount)
		}
	})
}

func TestGenerationBumpedByEveryChange(t *testing.T) {
	ctx := context.Background()
	r := newRegistry(memStore(t), newClock())
	gen := func() uint64 {
		g, _, err := r.readGeneration(ctx)
		if err != nil {
			t.Fatal(err)
		}
		return g
	}
	if g := gen(); g != 0 {
		t.Fatalf("generation of an empty store = %d", g)
	}
	last := uint64(0)
	step := func(what string, err error) {
		t.Helper()
		if err != nil {
			t.Fatalf("%s: %v", what, err)
		}
		if g := gen(); g <= last {
			t.Errorf("%s: generation %d, was %d", what, g, last)
		} else {
			last = g
		}
	}
	_, _, err := r.PutTopic(ctx, topic("orders"), "", false)
	step("create topic", err)
	_, _, err = r.PutTopic(ctx, topic("orders"), "", false)
	step("replace topic", err)
	_, err = r.RegenerateKey(ctx, "orders", "key2")
	step("regenerate key", err)
	_, _, err = r.PutSubscription(ctx, "orders", subscription("audit"), "", false)
	step("create subscription", err)
	step("delete subscription", r.DeleteSubscription(ctx, "orders", "audit"))
	step("delete topic", r.DeleteTopic(ctx, "orders"))
	_, _, err = r.EnsureAdminToken(ctx, "")
	step("create admin token", err)

	// Rejected requests change nothing.
	_, _, _ = r.PutTopic(ctx, topic("x"), "", false)
	_ = r.DeleteTopic(ctx, "orders")
	if g := gen(); g != last {
		t.Errorf("rejected requests bumped the generation to %d", g)
	}
}
