package ingest_test

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/go-chi/chi/v5"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"

	"github.com/sluicehq/sluice/controlplane"
	"github.com/sluicehq/sluice/ingest"
	"github.com/sluicehq/sluice/objectlog"
	"github.com/sluicehq/sluice/schemas"
)

// env is a publish endpoint on a real store with two topics:
// "cet" (CloudEvents, 2 partitions) and "egt" (Event Grid schema).
type env struct {
	srv   *httptest.Server
	store *objectlog.Store
	log   *objectlog.Log
	keys  map[string]schemas.TopicKeys
}

func newEnv(t *testing.T, tls bool, driver objectlog.Driver) *env {
	t.Helper()
	ctx := context.Background()
	if driver == nil {
		d, err := objectlog.NewFileDriver(t.TempDir())
		if err != nil {
			t.Fatal(err)
		}
		driver = d
	}
	store := objectlog.NewStore(driver, objectlog.RetryPolicy{MaxAttempts: 2, InitialInterval: time.Millisecond, MaxInterval: time.Millisecond})
	reg := controlplane.New(store, time.Now)
	e := &env{store: store, keys: map[string]schemas.TopicKeys{}}
	for name, schema := range map[string]string{"cet": schemas.CloudEventSchemaV1_0, "egt": schemas.EventGridSchema} {
		tp := schemas.Topic{Name: name, Properties: schemas.TopicProperties{InputSchema: schema, Partitions: 2}}
		if _, _, err := reg.PutTopic(ctx, tp, "", true); err != nil {
			t.Fatal(err)
		}
		k, err := reg.Keys(ctx, name)
		if err != nil {
			t.Fatal(err)
		}
		e.keys[name] = k
	}
	l, err := objectlog.NewLog(store, objectlog.DefaultConfig())
	if err != nil {
		t.Fatal(err)
	}
	e.log = l
	h, err := ingest.New(l, ingest.NewTopics(reg), ingest.DefaultConfig(), ingest.NewMetrics(prometheus.NewRegistry()), zerolog.Nop())
	if err != nil {
		t.Fatal(err)
	}
	r := chi.NewRouter()
	h.Routes(r)
	if tls {
		e.srv = httptest.NewTLSServer(r)
	} else {
		e.srv = httptest.NewServer(r)
	}
	t.Cleanup(func() { e.srv.Close(); l.Close() })
	return e
}

func (e *env) post(t *testing.T, path, contentType, body string, hdr map[string]string) (int, string) {
	t.Helper()
	req, _ := http.NewRequest("POST", e.srv.URL+path, strings.NewReader(body))
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	resp, err := e.srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// stored returns every event id in the topic's log, over all partitions.
func (e *env) stored(t *testing.T, topic string) []string {
	t.Helper()
	var ids []string
	for p := 0; p < 2; p++ {
		r, err := e.log.NewReader(topic, p)
		if err != nil {
			t.Fatal(err)
		}
		for {
			ev, err := r.Next(context.Background())
			if errors.Is(err, io.EOF) {
				break
			}
			if err != nil {
				t.Fatal(err)
			}
			var v struct{ ID string }
			if err := json.Unmarshal(ev.Data, &v); err != nil {
				t.Fatal(err)
			}
			ids = append(ids, v.ID)
		}
	}
	return ids
}

func ce(id string) string {
	return fmt.Sprintf(`{"specversion":"1.0","id":%q,"source":"/test","type":"t.created","data":{"n":1}}`, id)
}

func eg(id string) string {
	return fmt.Sprintf(`{"id":%q,"subject":"/s","eventType":"t.created","eventTime":"2026-11-25T10:00:00Z","data":{"n":1},"dataVersion":"1"}`, id)
}

func TestPublishAcceptsAndStores(t *testing.T) {
	e := newEnv(t, false, nil)
	key := map[string]string{"aeg-sas-key": e.keys["cet"].Key1}
	if code, body := e.post(t, "/topics/cet/api/events", "application/cloudevents-batch+json; charset=utf-8", "["+ce("a")+","+ce("b")+"]", key); code != 200 {
		t.Fatalf("batch: %d %s", code, body)
	}
	if code, body := e.post(t, "/topics/cet/events", "application/cloudevents+json", ce("c"), key); code != 200 {
		t.Fatalf("structured: %d %s", code, body)
	}
	bin := map[string]string{"aeg-sas-key": e.keys["cet"].Key2, "ce-specversion": "1.0", "ce-id": "d", "ce-source": "/test", "ce-type": "t.created"}
	if code, body := e.post(t, "/topics/cet/events", "application/json", `{"n":2}`, bin); code != 200 {
		t.Fatalf("binary with key2: %d %s", code, body)
	}
	if got := strings.Join(sortedCopy(e.stored(t, "cet")), ","); got != "a,b,c,d" {
		t.Fatalf("stored %s", got)
	}
	egKey := map[string]string{"aeg-sas-key": e.keys["egt"].Key1}
	if code, body := e.post(t, "/topics/egt/api/events?api-version=2018-01-01", "application/json", "["+eg("x")+","+eg("y")+"]", egKey); code != 200 {
		t.Fatalf("event grid: %d %s", code, body)
	}
	// curl's default content type, as in Microsoft's samples.
	if code, body := e.post(t, "/topics/egt/api/events", "application/x-www-form-urlencoded", "["+eg("z")+"]", egKey); code != 200 {
		t.Fatalf("event grid, form content type: %d %s", code, body)
	}
	if got := strings.Join(sortedCopy(e.stored(t, "egt")), ","); got != "x,y,z" {
		t.Fatalf("stored %s", got)
	}
}

func sortedCopy(s []string) []string {
	out := append([]string(nil), s...)
	for i := range out {
		for j := i + 1; j < len(out); j++ {
			if out[j] < out[i] {
				out[i], out[j] = out[j], out[i]
			}
		}
	}
	return out
}

func TestPartitionKeyPicksPartition(t *testing.T) {
	e := newEnv(t, false, nil)
	key := map[string]string{"aeg-sas-key": e.keys["cet"].Key1}
	var batch []string
	for i := 0; i < 20; i++ {
		batch = append(batch, fmt.Sprintf(`{"specversion":"1.0","id":"k%d","source":"/t","type":"t","partitionkey":"customer-7"}`, i))
	}
	if code, body := e.post(t, "/topics/cet/api/events", "application/cloudevents-batch+json", "["+strings.Join(batch, ",")+"]", key); code != 200 {
		t.Fatalf("%d %s", code, body)
	}
	counts := [2]int{}
	for p := 0; p < 2; p++ {
		r, _ := e.log.NewReader("cet", p)
		for {
			if _, err := r.Next(context.Background()); err != nil {
				break
			}
			counts[p]++
		}
	}
	if counts[0]*counts[1] != 0 || counts[0]+counts[1] != 20 {
		t.Fatalf("events with one partition key landed in partitions %v", counts)
	}
}

// Every rejection has a status, the Event Grid error body with a message
// that says what to fix, and stores nothing.
func TestPublishRejections(t *testing.T) {
	e := newEnv(t, false, nil)
	base := e.store.Stats()
	key := map[string]string{"aeg-sas-key": e.keys["cet"].Key1}
	big := `{"specversion":"1.0","id":"big","source":"/t","type":"t","data":"` + strings.Repeat("x", 1<<20) + `"}`
	cases := []struct {
		name, path, ct, body string
		hdr                  map[string]string
		status               int
		mentions             string
	}{
		{"unknown topic", "/topics/nope/api/events", "application/cloudevents-batch+json", "[" + ce("a") + "]", key, 404, "does not exist"},
		{"no key", "/topics/cet/api/events", "application/cloudevents-batch+json", "[" + ce("a") + "]", nil, 401, "aeg-sas-key"},
		{"wrong key", "/topics/cet/api/events", "application/cloudevents-batch+json", "[" + ce("a") + "]", map[string]string{"aeg-sas-key": e.keys["egt"].Key1}, 401, "not valid"},
		{"bad specversion in [1]", "/topics/cet/api/events", "application/cloudevents-batch+json", "[" + ce("a") + "," + strings.Replace(ce("b"), `"1.0"`, `"0.3"`, 1) + "]", key, 400, "[1].specversion"},
		{"malformed JSON", "/topics/cet/api/events", "application/cloudevents-batch+json", "[" + ce("a") + ",{", key, 400, ""},
		{"empty batch", "/topics/cet/api/events", "application/cloudevents-batch+json", "[]", key, 400, ""},
		{"unsupported content type", "/topics/cet/api/events", "text/plain", ce("a"), key, 415, "cloudevents"},
		{"request too large", "/topics/cet/api/events", "application/cloudevents-batch+json", "[" + big + "]", key, 413, "larger than"},
		{"event grid missing eventTime", "/topics/egt/api/events", "application/json", `[{"id":"1","subject":"s","eventType":"t","data":{}}]`, map[string]string{"aeg-sas-key": e.keys["egt"].Key1}, 400, "eventTime"},
		{"CloudEvents route on an Event Grid topic", "/topics/egt/events", "application/cloudevents+json", ce("a"), map[string]string{"aeg-sas-key": e.keys["egt"].Key1}, 400, "/topics/egt/api/events"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			code, body := e.post(t, c.path, c.ct, c.body, c.hdr)
			var eb struct {
				Error struct {
					Code, Message string
					Details       []struct{ Code, Message string }
				}
			}
			if err := json.Unmarshal([]byte(body), &eb); err != nil || eb.Error.Code == "" || eb.Error.Message == "" {
				t.Fatalf("%d %q: not an Event Grid error body", code, body)
			}
			if code != c.status || !strings.Contains(body, c.mentions) {
				t.Fatalf("got %d %s, want %d mentioning %q", code, body, c.status, c.mentions)
			}
		})
	}
	if n := e.store.Stats().Sub(base).Total(objectlog.OpPut, objectlog.OpPutIfAbsnt, objectlog.OpPutIfMatch); n != 0 {
		t.Fatalf("rejected requests wrote %d objects", n)
	}
}

// sas builds a token the way Microsoft's samples and the Azure SDK's tests do.
func sas(resource, key string, expiry string) string {
	text := "r=" + url.QueryEscape(resource) + "&e=" + url.QueryEscape(expiry)
	raw, _ := base64.StdEncoding.DecodeString(key)
	mac := hmac.New(sha256.New, raw)
	mac.Write([]byte(text))
	return text + "&s=" + url.QueryEscape(base64.StdEncoding.EncodeToString(mac.Sum(nil)))
}

func TestSASTokens(t *testing.T) {
	e := newEnv(t, false, nil)
	res := e.srv.URL + "/topics/cet/api/events"
	future := time.Now().Add(time.Hour).UTC()
	for _, c := range []struct {
		name   string
		hdr    map[string]string
		status int
	}{
		{"RFC 3339 expiry, key1", map[string]string{"aeg-sas-token": sas(res, e.keys["cet"].Key1, future.Format(time.RFC3339))}, 200},
		{"US expiry, key2, Authorization header", map[string]string{"Authorization": "SharedAccessSignature " + sas(res, e.keys["cet"].Key2, future.Format("1/2/2006 3:04:05 PM"))}, 200},
		{"expired", map[string]string{"aeg-sas-token": sas(res, e.keys["cet"].Key1, time.Now().Add(-time.Minute).UTC().Format(time.RFC3339))}, 401},
		{"another topic's key", map[string]string{"aeg-sas-token": sas(res, e.keys["egt"].Key1, future.Format(time.RFC3339))}, 401},
		{"another topic's resource", map[string]string{"aeg-sas-token": sas(e.srv.URL+"/topics/egt/api/events", e.keys["cet"].Key1, future.Format(time.RFC3339))}, 401},
		{"tampered", map[string]string{"aeg-sas-token": strings.Replace(sas(res, e.keys["cet"].Key1, future.Format(time.RFC3339)), "r=", "r=x", 1)}, 401},
	} {
		t.Run(c.name, func(t *testing.T) {
			if code, body := e.post(t, "/topics/cet/api/events", "application/cloudevents-batch+json", "["+ce("s")+"]", c.hdr); code != c.status {
				t.Fatalf("%d %s, want %d", code, body, c.status)
			}
		})
	}
}

func TestKeyInQueryParameter(t *testing.T) {
	e := newEnv(t, false, nil)
	path := "/topics/cet/api/events?aeg-sas-key=" + url.QueryEscape(e.keys["cet"].Key1)
	if code, body := e.post(t, path, "application/cloudevents-batch+json", "["+ce("q")+"]", nil); code != 200 {
		t.Fatalf("%d %s", code, body)
	}
}

// When the store is down the answer is 503 with Retry-After, never 200.
func TestStoreUnavailable(t *testing.T) {
	var down atomic.Bool
	fd := objectlog.NewFaultDriver(objectlog.NewMemDriver(), objectlog.FaultConfig{Hook: func(op objectlog.Op, key string) error {
		if down.Load() && strings.Contains(key, "log/") {
			return fmt.Errorf("%w: injected outage", objectlog.ErrTransient)
		}
		return nil
	}})
	e := newEnv(t, false, fd)
	down.Store(true)
	req, _ := http.NewRequest("POST", e.srv.URL+"/topics/cet/api/events", strings.NewReader("["+ce("a")+"]"))
	req.Header.Set("Content-Type", "application/cloudevents-batch+json")
	req.Header.Set("aeg-sas-key", e.keys["cet"].Key1)
	resp, err := e.srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 503 || resp.Header.Get("Retry-After") == "" {
		t.Fatalf("store down: %d (Retry-After %q), want 503 with Retry-After", resp.StatusCode, resp.Header.Get("Retry-After"))
	}
}
