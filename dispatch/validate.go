package dispatch

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/oklog/ulid/v2"

	"github.com/sluicehq/sluice/controlplane"
	"github.com/sluicehq/sluice/schemas"
)

// Before anything is delivered to a new endpoint, the endpoint shows it
// wants the events:
//
//   - EventGridSchema subscriptions: Event Grid's handshake. A
//     Microsoft.EventGrid.SubscriptionValidationEvent is POSTed with a
//     validationCode and a validationUrl; the endpoint answers 200
//     {"validationResponse": code}, or answers 2xx and later GETs the
//     validation URL (valid ValidationURLLifetime).
//   - CloudEventSchemaV1_0 subscriptions: CloudEvents webhook abuse
//     protection. An OPTIONS request with WebHook-Request-Origin; the
//     endpoint answers 2xx with WebHook-Allowed-Origin (that origin or *)
//     and optionally WebHook-Allowed-Rate (requests per minute, or *).

// ValidationEventType is the event type of Event Grid's handshake.
const ValidationEventType = "Microsoft.EventGrid.SubscriptionValidationEvent"

// ValidateEndpoint runs the validation handshake a subscription's delivery
// schema calls for. It returns the provisioning state
// (controlplane.ProvisioningSucceeded, ...AwaitingManualAction or
// ...Failed), why when not Succeeded, and the rate the endpoint allows
// (requests per minute; 0: any). origin names sluice in the CloudEvents
// handshake. Its signature is controlplane.Registry.ValidateEndpoint's.
func (s *Sender) ValidateEndpoint(origin string) func(ctx context.Context, topic string, sub schemas.Subscription, code, validationURL string) (string, string, int) {
	return func(ctx context.Context, topic string, sub schemas.Subscription, code, validationURL string) (string, string, int) {
		timeout := DefaultDeliveryTimeout
		if t := sub.Properties.Destination.Properties.DeliveryTimeoutInSeconds; t > 0 {
			timeout = time.Duration(t) * time.Second
		}
		ctx, cancel := context.WithTimeout(ctx, timeout)
		defer cancel()
		endpoint := sub.Properties.Destination.Properties.EndpointURL
		if sub.Properties.EventDeliverySchema == schemas.EventGridSchema {
			return s.eventGridHandshake(ctx, topic, sub.Name, endpoint, code, validationURL)
		}
		return s.abuseProtection(ctx, endpoint, origin)
	}
}

func failed(format string, args ...any) (string, string, int) {
	return controlplane.ProvisioningFailed, "endpoint validation failed: " + fmt.Sprintf(format, args...), 0
}

func (s *Sender) eventGridHandshake(ctx context.Context, topic, sub, endpoint, code, validationURL string) (string, string, int) {
	data := map[string]string{"validationCode": code}
	if validationURL != "" {
		data["validationUrl"] = validationURL
	}
	ev := []map[string]any{{
		"id":              ulid.Make().String(),
		"topic":           topic,
		"subject":         "",
		"data":            data,
		"eventType":       ValidationEventType,
		"eventTime":       time.Now().UTC().Format(time.RFC3339Nano),
		"metadataVersion": "1",
		"dataVersion":     "1",
	}}
	body, _ := json.Marshal(ev)
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, endpoint, bytes.NewReader(body))
	if err != nil {
		return failed("%v", unwrapURLError(err))
	}
	h := req.Header
	h.Set("Content-Type", "application/json")
	h.Set("aeg-event-type", "SubscriptionValidation")
	h.Set("aeg-subscription-name", strings.ToUpper(sub))
	h.Set("aeg-delivery-count", "0")
	h.Set("aeg-data-version", "1")
	h.Set("aeg-metadata-version", "1")
	resp, err := s.Client.Do(req)
	if err != nil {
		return failed("POST %s: %v", redactURL(endpoint), unwrapURLError(err))
	}
	defer resp.Body.Close()
	answer, _ := io.ReadAll(io.LimitReader(resp.Body, maxResponseBody))
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return failed("the endpoint answered the validation event with %d %s (it must answer 200 with {\"validationResponse\": \"<validationCode>\"})", resp.StatusCode, http.StatusText(resp.StatusCode))
	}
	var got struct {
		ValidationResponse string `json:"validationResponse"`
	}
	if json.Unmarshal(answer, &got) == nil && got.ValidationResponse != "" {
		if got.ValidationResponse == code {
			return controlplane.ProvisioningSucceeded, "", 0
		}
		return failed("the endpoint answered validationResponse %q, not the validationCode it was sent", got.ValidationResponse)
	}
	if validationURL == "" {
		return failed("the endpoint answered %d without {\"validationResponse\": \"<validationCode>\"}", resp.StatusCode)
	}
	return controlplane.ProvisioningAwaitingManualAction, "the endpoint did not answer with the validation code; it can confirm by a GET of the validationUrl it was sent", 0
}

func (s *Sender) abuseProtection(ctx context.Context, endpoint, origin string) (string, string, int) {
	req, err := http.NewRequestWithContext(ctx, http.MethodOptions, endpoint, nil)
	if err != nil {
		return failed("%v", unwrapURLError(err))
	}
	req.Header.Set("WebHook-Request-Origin", origin)
	resp, err := s.Client.Do(req)
	if err != nil {
		return failed("OPTIONS %s: %v", redactURL(endpoint), unwrapURLError(err))
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, maxResponseBody))
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return failed("the endpoint answered the CloudEvents abuse-protection request (OPTIONS with WebHook-Request-Origin) with %d %s", resp.StatusCode, http.StatusText(resp.StatusCode))
	}
	allowed := strings.TrimSpace(resp.Header.Get("WebHook-Allowed-Origin"))
	if allowed != "*" && !strings.EqualFold(allowed, origin) {
		if allowed == "" {
			return failed("the endpoint answered OPTIONS without WebHook-Allowed-Origin (it must echo %q or answer *)", origin)
		}
		return failed("the endpoint allows origin %q, not %q", allowed, origin)
	}
	rate := 0
	if v := strings.TrimSpace(resp.Header.Get("WebHook-Allowed-Rate")); v != "" && v != "*" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 {
			return failed("WebHook-Allowed-Rate %q is neither * nor a positive number of requests per minute", v)
		}
		rate = n
	}
	return controlplane.ProvisioningSucceeded, "", rate
}

// OriginOf is the WebHook-Request-Origin sluice announces: the host of its
// own address.
func OriginOf(base string) string {
	if u, err := url.Parse(base); err == nil && u.Hostname() != "" {
		return u.Hostname()
	}
	return "sluice"
}
