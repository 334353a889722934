package main

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
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
	cli := func(args ...string) cliResult {
		return runCLI(t, append(args, "--server", s.base, "--token", testAdminToken)...)
	}
	must := func(args ...string) string {
		t.Helper()
		r := cli(args...)
		if r.err != nil {
			t.Fatalf("sluice %s: %v\n%s", strings.Join(args, " "), r.err, r.stderr)
		}
		return r.stdout
	}
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
