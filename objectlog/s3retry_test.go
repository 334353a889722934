package objectlog_test

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sluicehq/sluice/objectlog"
)

// The Store is the only layer that retries S3 requests, so the requests it
// counts are the requests S3 sees (and bills): an endpoint that always
// answers 503 SlowDown gets exactly the Store's attempts, not three SDK
// attempts for each.
func TestS3RequestsAreCountedOnce(t *testing.T) {
	var seen atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		seen.Add(1)
		w.Header().Set("Content-Type", "application/xml")
		w.WriteHeader(http.StatusServiceUnavailable)
		w.Write([]byte(`<?xml version="1.0" encoding="UTF-8"?><Error><Code>SlowDown</Code><Message>Please reduce your request rate.</Message></Error>`))
	}))
	defer srv.Close()
	t.Setenv("AWS_ACCESS_KEY_ID", "test")
	t.Setenv("AWS_SECRET_ACCESS_KEY", "test")
	url := "s3://bucket?endpoint=" + srv.URL + "&use_path_style=true&disable_https=true&region=us-east-1"
	s, err := objectlog.Open(context.Background(), url)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	store := objectlog.NewStore(s.Driver(), objectlog.RetryPolicy{MaxAttempts: 2, InitialInterval: time.Millisecond, MaxInterval: time.Millisecond})
	_, _, err = store.Get(context.Background(), "k")
	if !errors.Is(err, objectlog.ErrTransient) {
		t.Fatalf("503 SlowDown read as %v, want ErrTransient", err)
	}
	counted := store.Stats().Total()
	if got := seen.Load(); got != counted || got != 2 {
		t.Fatalf("the endpoint saw %d requests, the store counted %d; want 2 and 2", got, counted)
	}
	if !strings.Contains(err.Error(), "SlowDown") {
		t.Fatalf("error lost S3's code: %v", err)
	}
}
