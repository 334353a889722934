package main

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
)

// Endpoint validation against a real server: Event Grid's handshake (answered
// at once by the dev echo receiver, or later through the validation URL), the
// CloudEvents abuse-protection check, failures explained by `sub show`, the
// opt-out, and nothing delivered before an endpoint is validated.
func TestEndpointValidation(t *testing.T) {
	s := startServe(t, []string{"SLUICE_TOKEN=" + testAdminToken}, "--store", t.TempDir(), "--dev-echo")
	_, must := s.cli(t)
	// A receiver that takes the validation event without answering the
	// code, and keeps the validation URL to confirm later.
	var mu sync.Mutex
	var validationURL string
	var delivered int
	manual := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		mu.Lock()
		defer mu.Unlock()
		if r.Header.Get("aeg-event-type") == "SubscriptionValidation" {
			var evs []struct {
				Data struct{ ValidationURL string }
			}
			if json.Unmarshal(body, &evs) == nil && len(evs) == 1 {
				validationURL = evs[0].Data.ValidationURL
			}
			return
		}
		var evs []json.RawMessage
		if json.Unmarshal(body, &evs) == nil {
			delivered += len(evs)
		}
	}))
	defer manual.Close()
	refusing := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(404) }))
	defer refusing.Close()

	must("topic", "create", "validated")
	if out := must("sub", "create", "validated", "echo", "--endpoint", s.base+"/dev/echo", "--delivery-schema", "EventGridSchema"); !strings.Contains(out, "Succeeded") {
		t.Errorf("the dev echo answers the handshake: want Succeeded:\n%s", out)
	}
	if out := must("sub", "create", "validated", "manual", "--endpoint", manual.URL, "--delivery-schema", "EventGridSchema"); !strings.Contains(out, "AwaitingManualAction") {
		t.Errorf("an endpoint that did not answer the code: want AwaitingManualAction:\n%s", out)
	}
	must("sub", "create", "validated", "refused", "--endpoint", refusing.URL)
	if out := must("sub", "show", "validated", "refused"); !strings.Contains(out, "Failed") ||
		!strings.Contains(out, "answered the CloudEvents abuse-protection request (OPTIONS with WebHook-Request-Origin) with 404") {
		t.Errorf("sub show of a failed validation must say why:\n%s", out)
	}
	if out := must("sub", "create", "validated", "skipping", "--endpoint", refusing.URL, "--skip-validation"); !strings.Contains(out, "Succeeded") {
		t.Errorf("--skip-validation: want Succeeded:\n%s", out)
	}

	must("publish", "validated", `{"n":1}`, `{"n":2}`)
	mu.Lock()
	u, n := validationURL, delivered
	mu.Unlock()
	if u == "" || n != 0 {
		t.Fatalf("validation URL %q, %d events delivered before validation (want a URL and none)", u, n)
	}
	// A wrong code is refused; the URL as sent validates.
	resp, err := http.Get(strings.Replace(u, "code=", "code=x", 1))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusForbidden {
		t.Errorf("validation URL with a wrong code: %d, want 403", resp.StatusCode)
	}
	resp, err = http.Get(u)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("validation URL: %d", resp.StatusCode)
	}
	if out := must("sub", "show", "validated", "manual"); !strings.Contains(out, "Succeeded") {
		t.Errorf("after the GET of the validation URL: want Succeeded:\n%s", out)
	}
	waitUntil(t, "the events published before validation delivered", 20*time.Second, func() bool {
		mu.Lock()
		defer mu.Unlock()
		return delivered == 2
	})
	if err := s.stop(t); err != nil {
		t.Errorf("graceful stop: %v", err)
	}
}

// Advanced filters against a real server, the subscription given as JSON
// the way the README shows.
func TestAdvancedFiltersThroughTheCLI(t *testing.T) {
	s := startServe(t, []string{"SLUICE_TOKEN=" + testAdminToken}, "--store", t.TempDir(), "--dev-echo")
	must := func(stdin string, args ...string) string {
		t.Helper()
		r := runCLIStdin(t, stdin, append(args, "--server", s.base, "--token", testAdminToken)...)
		if r.err != nil {
			t.Fatalf("sluice %s: %v\n%s", strings.Join(args, " "), r.err, r.stderr)
		}
		return r.stdout
	}
	must("", "topic", "create", "filtered", "--partitions", "1")
	must(`{"properties": {"destination": {"endpointType": "WebHook", "properties": {"endpointUrl": "`+s.base+`/dev/echo"}},
	 "filter": {"advancedFilters": [
	   {"operatorType": "NumberGreaterThanOrEquals", "key": "data.amount", "value": 100},
	   {"operatorType": "StringIn", "key": "data.currency", "values": ["EUR", "USD"]}]}}}`,
		"sub", "create", "filtered", "big", "-f", "-")
	must("", "publish", "filtered", `{"amount": 150, "currency": "eur", "n": 1}`, `{"amount": 50, "currency": "EUR", "n": 2}`,
		`{"amount": 500, "currency": "GBP", "n": 3}`, `{"currency": "USD", "n": 4}`)
	must("", "publish", "filtered", `{"amount": 100, "currency": "USD", "n": 5}`) // the last one: when it is delivered, the others were judged
	var got []string
	waitUntil(t, "the last matching event delivered", 20*time.Second, func() bool {
		_, body := s.do(t, "GET", "/dev/echo", "", "")
		var echo struct {
			Value []struct{ Method, Body string }
		}
		_ = json.Unmarshal([]byte(body), &echo)
		got = got[:0]
		for _, v := range echo.Value {
			if v.Method == "POST" {
				var ev struct{ Data struct{ N int } }
				_ = json.Unmarshal([]byte(v.Body), &ev)
				got = append(got, fmt.Sprint(ev.Data.N))
			}
		}
		return slices.Contains(got, "5")
	})
	slices.Sort(got)
	if strings.Join(got, ",") != "1,5" {
		t.Errorf("delivered events %v, want only 1 and 5 (amount ≥ 100 in EUR or USD, any case)", got)
	}
}
