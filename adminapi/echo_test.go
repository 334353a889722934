package adminapi

import (
	"fmt"
	"net/http"
	"strings"
	"testing"
)

func TestEchoHandshake(t *testing.T) {
	e := newEnv(t, Options{DevEcho: true})
	body := `[{"id":"1","topic":"t","subject":"","eventType":"Microsoft.EventGrid.SubscriptionValidationEvent",
		"eventTime":"2030-01-01T00:00:00Z","data":{"validationCode":"512d38b6-c7b8-40c8-89fe-f46f9e9622b6","validationUrl":"https://x"},
		"dataVersion":"1","metadataVersion":"1"}]`
	r := e.expect(e.do(http.MethodPost, "/dev/echo", body, "Authorization", "", "aeg-event-type", "SubscriptionValidation"), 200)
	var got map[string]string
	r.json(t, &got)
	if got["validationResponse"] != "512d38b6-c7b8-40c8-89fe-f46f9e9622b6" {
		t.Errorf("handshake answer: %s", r.body)
	}
}

func TestEchoRecordsAndRedacts(t *testing.T) {
	e := newEnv(t, Options{DevEcho: true})
	r := e.expect(e.do(http.MethodPost, "/dev/echo?code=fn-secret&x=1", `[{"eventType":"Orders.Created","data":{"n":1}}]`,
		"Authorization", "Bearer very-secret", "aeg-sas-key", "sas-secret", "aeg-event-type", "Notification",
		"X-Api-Key", "hunter2"), 200)
	if len(r.body) != 0 {
		t.Errorf("delivery answer has a body: %s", r.body)
	}
	var lst struct{ Value []EchoedRequest }
	e.expect(e.do(http.MethodGet, "/dev/echo", nil, "Authorization", ""), 200).json(t, &lst)
	if len(lst.Value) != 1 {
		t.Fatalf("recorded %d requests", len(lst.Value))
	}
	got := lst.Value[0]
	if got.Method != "POST" || got.Path != "/dev/echo" || got.Body != `[{"eventType":"Orders.Created","data":{"n":1}}]` ||
		got.Headers["Aeg-Event-Type"] != "Notification" || got.Headers["Authorization"] != redacted ||
		got.Headers["Aeg-Sas-Key"] != redacted || got.Headers["X-Api-Key"] != redacted ||
		got.Query != "code=<redacted>&x=1" {
		t.Errorf("recorded %+v", got)
	}
	logs := e.logs.String()
	for _, secret := range []string{"very-secret", "sas-secret", "hunter2", "fn-secret"} {
		if strings.Contains(logs, secret) {
			t.Errorf("the log shows %q", secret)
		}
	}
	if !strings.Contains(logs, `"level":"info"`) || !strings.Contains(logs, "Orders.Created") {
		t.Errorf("the delivery was not logged at info: %s", logs)
	}
}

func TestEchoAbuseProtection(t *testing.T) {
	e := newEnv(t, Options{DevEcho: true})
	r := e.expect(e.do(http.MethodOptions, "/dev/echo", nil, "Authorization", "",
		"WebHook-Request-Origin", "eventemitter.example.com", "WebHook-Request-Rate", "120"), 200)
	if r.header.Get("WebHook-Allowed-Origin") != "eventemitter.example.com" || r.header.Get("WebHook-Allowed-Rate") != "*" {
		t.Errorf("preflight headers: %v", r.header)
	}
}

func TestEchoRingBounded(t *testing.T) {
	e := newEnv(t, Options{DevEcho: true})
	for i := 0; i < echoRingSize+5; i++ {
		e.expect(e.do(http.MethodPost, "/dev/echo", fmt.Sprintf(`{"n":%d}`, i)), 200)
	}
	var lst struct{ Value []EchoedRequest }
	e.expect(e.do(http.MethodGet, "/dev/echo", nil), 200).json(t, &lst)
	if len(lst.Value) != echoRingSize || lst.Value[0].Body != `{"n":5}` || lst.Value[echoRingSize-1].Body != fmt.Sprintf(`{"n":%d}`, echoRingSize+4) {
		t.Errorf("ring: %d entries, first %q, last %q", len(lst.Value), lst.Value[0].Body, lst.Value[len(lst.Value)-1].Body)
	}
}

func TestEchoTruncatesLargeBodies(t *testing.T) {
	e := newEnv(t, Options{DevEcho: true})
	e.expect(e.do(http.MethodPost, "/dev/echo", strings.Repeat("a", echoBodyBytes+100)), 200)
	var lst struct{ Value []EchoedRequest }
	e.expect(e.do(http.MethodGet, "/dev/echo", nil), 200).json(t, &lst)
	if got := lst.Value[0]; len(got.Body) != echoBodyBytes || !got.BodyTruncated {
		t.Errorf("kept %d bytes, truncated=%v", len(got.Body), got.BodyTruncated)
	}
}

func TestEchoAnswersTheStatusAskedFor(t *testing.T) {
	e := newEnv(t, Options{DevEcho: true})
	e.expect(e.do(http.MethodPost, "/dev/echo?status=503", `{"id":"1"}`, "Authorization", ""), 503)
	e.expect(e.do(http.MethodPost, "/dev/echo?status=204", `{"id":"1"}`, "Authorization", ""), 204)
	r := e.expect(e.do(http.MethodPost, "/dev/echo?status=abc", `{"id":"1"}`, "Authorization", ""), 400)
	if !strings.Contains(string(r.body), "want an HTTP status code") {
		t.Errorf("bad status parameter: %s", r.body)
	}
}
