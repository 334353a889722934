package controlplane

import (
	"context"
	"testing"
	"time"

	"github.com/sluicehq/sluice/objectlog"
	"github.com/sluicehq/sluice/schemas"
)

// Deleting a topic deletes its events: a topic created again under the same
// name starts empty instead of showing the old topic's events.
func TestDeleteTopicDeletesItsEvents(t *testing.T) {
	ctx := context.Background()
	store := memStore(t)
	reg := New(store, time.Now)
	mustPutTopic(t, reg, topic("orders"))
	mustPutTopic(t, reg, topic("other"))
	l, err := objectlog.NewLog(store, objectlog.DefaultConfig())
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	rec := []objectlog.Record{{Data: []byte(`{"id":"1"}`), Time: time.Now()}}
	for _, name := range []string{"orders", "other"} {
		if _, err := l.Append(ctx, name, 0, rec); err != nil {
			t.Fatal(err)
		}
	}
	if err := reg.DeleteTopic(ctx, "orders"); err != nil {
		t.Fatal(err)
	}
	if n := countObjects(t, store, "log/orders/"); n != 0 {
		t.Fatalf("%d objects of the deleted topic's log remain", n)
	}
	if n := countObjects(t, store, "log/other/"); n == 0 {
		t.Fatal("deleting one topic deleted another's events")
	}
	mustPutTopic(t, reg, schemas.Topic{Name: "orders"})
	if _, ok, err := l.Tail(ctx, "orders", 0); ok || err != nil {
		t.Fatalf("re-created topic is not empty (%v)", err)
	}
}
