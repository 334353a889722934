package dispatch

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/rs/zerolog"

	"github.com/sluicehq/sluice/controlplane"
	"github.com/sluicehq/sluice/schemas"
)

func TestValidateEndpoint(t *testing.T) {
	const code = "code-123"
	cases := []struct {
		name    string
		schema  string
		handler http.HandlerFunc
		state   string
		message string
		rate    int
	}{
		{"event grid: answers the code", schemas.EventGridSchema, func(w http.ResponseWriter, r *http.Request) {
			var evs []struct {
				EventType string
				Data      struct{ ValidationCode, ValidationURL string }
			}
			body, _ := io.ReadAll(r.Body)
			if err := json.Unmarshal(body, &evs); err != nil || len(evs) != 1 || evs[0].EventType != ValidationEventType ||
				r.Header.Get("aeg-event-type") != "SubscriptionValidation" || evs[0].Data.ValidationURL != "https://sluice.test/validate" {
				w.WriteHeader(400)
				return
			}
			json.NewEncoder(w).Encode(map[string]string{"validationResponse": evs[0].Data.ValidationCode})
		}, controlplane.ProvisioningSucceeded, "", 0},
		{"event grid: wrong code", schemas.EventGridSchema, func(w http.ResponseWriter, r *http.Request) {
			w.Write([]byte(`{"validationResponse":"nope"}`))
		}, controlplane.ProvisioningFailed, `validationResponse "nope", not the validationCode`, 0},
		{"event grid: 200 without the code waits for the URL", schemas.EventGridSchema, func(w http.ResponseWriter, r *http.Request) {},
			controlplane.ProvisioningAwaitingManualAction, "GET of the validationUrl", 0},
		{"event grid: 404", schemas.EventGridSchema, func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(404) },
			controlplane.ProvisioningFailed, "answered the validation event with 404 Not Found", 0},
		{"cloudevents: origin echoed", schemas.CloudEventSchemaV1_0, func(w http.ResponseWriter, r *http.Request) {
			if r.Method != http.MethodOptions {
				w.WriteHeader(405)
				return
			}
			w.Header().Set("WebHook-Allowed-Origin", r.Header.Get("WebHook-Request-Origin"))
		}, controlplane.ProvisioningSucceeded, "", 0},
		{"cloudevents: any origin, 120 a minute", schemas.CloudEventSchemaV1_0, func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("WebHook-Allowed-Origin", "*")
			w.Header().Set("WebHook-Allowed-Rate", "120")
		}, controlplane.ProvisioningSucceeded, "", 120},
		{"cloudevents: no allowed origin", schemas.CloudEventSchemaV1_0, func(w http.ResponseWriter, r *http.Request) {},
			controlplane.ProvisioningFailed, "without WebHook-Allowed-Origin", 0},
		{"cloudevents: another origin", schemas.CloudEventSchemaV1_0, func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("WebHook-Allowed-Origin", "evil.example")
		}, controlplane.ProvisioningFailed, `allows origin "evil.example", not "sluice.test"`, 0},
		{"cloudevents: bad rate", schemas.CloudEventSchemaV1_0, func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("WebHook-Allowed-Origin", "*")
			w.Header().Set("WebHook-Allowed-Rate", "lots")
		}, controlplane.ProvisioningFailed, `WebHook-Allowed-Rate "lots"`, 0},
		{"cloudevents: OPTIONS not allowed", schemas.CloudEventSchemaV1_0, func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(405) },
			controlplane.ProvisioningFailed, "with 405 Method Not Allowed", 0},
	}
	validate := NewSender(zerolog.Nop()).ValidateEndpoint(OriginOf("https://sluice.test:8443"))
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			srv := httptest.NewServer(c.handler)
			defer srv.Close()
			s := schemas.Subscription{Name: "hook", Properties: schemas.SubscriptionProperties{EventDeliverySchema: c.schema,
				Destination: schemas.Destination{EndpointType: "WebHook", Properties: schemas.DestinationProperties{EndpointURL: srv.URL}}}}
			state, msg, rate := validate(context.Background(), "orders", s, code, "https://sluice.test/validate")
			if state != c.state || !strings.Contains(msg, c.message) || rate != c.rate {
				t.Errorf("got %s %q rate %d; want %s, a message with %q, rate %d", state, msg, rate, c.state, c.message, c.rate)
			}
		})
	}
	// An endpoint that is not there fails, saying so.
	s := schemas.Subscription{Name: "hook", Properties: schemas.SubscriptionProperties{EventDeliverySchema: schemas.CloudEventSchemaV1_0,
		Destination: schemas.Destination{EndpointType: "WebHook", Properties: schemas.DestinationProperties{EndpointURL: "http://127.0.0.1:1/x"}}}}
	if state, msg, _ := validate(context.Background(), "orders", s, code, ""); state != controlplane.ProvisioningFailed || !strings.Contains(msg, "OPTIONS http://127.0.0.1:1/x") {
		t.Errorf("unreachable endpoint: %s %q", state, msg)
	}
}
