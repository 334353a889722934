package ingest_test

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/go-chi/chi/v5"
	"github.com/rs/zerolog"

	"github.com/sluicehq/sluice/controlplane"
	"github.com/sluicehq/sluice/ingest"
	"github.com/sluicehq/sluice/internal/miniotest"
	"github.com/sluicehq/sluice/objectlog"
	"github.com/sluicehq/sluice/schemas"
)

// BenchmarkPublish measures publish throughput and ack latency through the
// real router and HTTP stack over loopback, 50 keep-alive connections, 1 KiB
// CloudEvents, against a no-op handler mounted on the same router in the
// same run: the ratio sluice/noop is the figure that survives a noisy
// machine. b.N is the number of requests.
func BenchmarkPublish(b *testing.B) {
	stores := []struct {
		name string
		url  func(b *testing.B) string
	}{
		{"file", func(b *testing.B) string { return "file://" + b.TempDir() }},
		{"minio", func(b *testing.B) string { return miniotest.Bucket(b) }},
	}
	for _, st := range stores {
		for _, batch := range []int{1, 100} {
			for _, target := range []string{"noop", "sluice"} {
				b.Run(fmt.Sprintf("%s/batch=%d/%s", st.name, batch, target), func(b *testing.B) {
					benchPublish(b, st.url(b), batch, target)
				})
			}
		}
	}
}

func benchPublish(b *testing.B, storeURL string, batch int, target string) {
	ctx := context.Background()
	store, err := objectlog.Open(ctx, storeURL)
	if err != nil {
		b.Fatal(err)
	}
	reg := controlplane.New(store, time.Now)
	if _, _, err := reg.PutTopic(ctx, schemas.Topic{Name: "bench", Properties: schemas.TopicProperties{Partitions: 4}}, "", false); err != nil {
		b.Fatal(err)
	}
	keys, err := reg.Keys(ctx, "bench")
	if err != nil {
		b.Fatal(err)
	}
	l, err := objectlog.NewLog(store, objectlog.LowLatency)
	if err != nil {
		b.Fatal(err)
	}
	defer l.Close()
	h, err := ingest.New(l, ingest.NewTopics(reg), ingest.DefaultConfig(), nil, zerolog.Nop())
	if err != nil {
		b.Fatal(err)
	}
	r := chi.NewRouter()
	h.Routes(r)
	r.Post("/noop", func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		w.WriteHeader(http.StatusOK)
	})
	srv := httptest.NewServer(r)
	defer srv.Close()

	evs := make([]string, batch)
	for i := range evs {
		head := fmt.Sprintf(`{"specversion":"1.0","id":"e%d","source":"/bench","type":"bench","data":"`, i)
		evs[i] = head + strings.Repeat("x", 1024-len(head)-2) + `"}`
	}
	body := []byte("[" + strings.Join(evs, ",") + "]")
	path := "/topics/bench/api/events"
	if target == "noop" {
		path = "/noop"
	}
	const conns = 50
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: conns, MaxConnsPerHost: conns}}
	lat := make([]time.Duration, b.N)
	var next atomic.Int64
	var wg sync.WaitGroup
	base := store.Stats()
	b.ResetTimer()
	start := time.Now()
	for c := 0; c < conns; c++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := next.Add(1) - 1
				if i >= int64(b.N) {
					return
				}
				req, _ := http.NewRequest("POST", srv.URL+path, bytes.NewReader(body))
				req.Header.Set("Content-Type", "application/cloudevents-batch+json")
				req.Header.Set("aeg-sas-key", keys.Key1)
				t0 := time.Now()
				resp, err := client.Do(req)
				if err != nil {
					b.Error(err)
					return
				}
				io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				if resp.StatusCode != 200 {
					b.Errorf("status %d", resp.StatusCode)
					return
				}
				lat[i] = time.Since(t0)
			}
		}()
	}
	wg.Wait()
	elapsed := time.Since(start)
	b.StopTimer()
	reqs := store.Stats().Sub(base).Total()
	sort.Slice(lat, func(i, j int) bool { return lat[i] < lat[j] })
	b.ReportMetric(float64(b.N)/elapsed.Seconds(), "req/s")
	b.ReportMetric(float64(b.N*batch)/elapsed.Seconds(), "events/s")
	b.ReportMetric(ms(lat[len(lat)/2]), "p50-ms")
	b.ReportMetric(ms(lat[len(lat)*99/100]), "p99-ms")
	if target == "sluice" {
		b.ReportMetric(float64(reqs)*1e6/float64(b.N*batch), "store-req/1M-events")
	}
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }
