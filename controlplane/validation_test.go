package controlplane

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/sluicehq/sluice/objectlog"
	"github.com/sluicehq/sluice/schemas"
)

// A pending endpoint validation is confirmed only with its code, only while
// the URL is valid; a new write validates again; a repeated confirmation is
// harmless; an endpoint change re-validates a validated subscription.
func TestEndpointValidationStates(t *testing.T) {
	stores(t, func(t *testing.T, store *objectlog.Store) {
		ctx := context.Background()
		c := newClock()
		r := newRegistry(store, c)
		var calls int
		var codes []string
		r.ValidationURL = func(topic, sub, code string) string {
			return "https://sluice.example/validate/" + topic + "/" + sub + "?code=" + code
		}
		r.ValidateEndpoint = func(_ context.Context, _ string, s schemas.Subscription, code, url string) (string, string, int) {
			calls++
			codes = append(codes, code)
			if !strings.HasSuffix(url, "?code="+code) {
				t.Errorf("validation URL %q does not carry the code", url)
			}
			return ProvisioningAwaitingManualAction, "waiting for the URL", 0
		}
		if _, _, err := r.PutTopic(ctx, topic("orders"), "", false); err != nil {
			t.Fatal(err)
		}
		got, _, err := r.PutSubscription(ctx, "orders", subscription("hook"), "", false)
		if err != nil {
			t.Fatal(err)
		}
		if got.Properties.ProvisioningState != ProvisioningAwaitingManualAction || !strings.Contains(got.Properties.ProvisioningMessage, "waiting for the URL (until ") {
			t.Fatalf("after create: %s %q", got.Properties.ProvisioningState, got.Properties.ProvisioningMessage)
		}
		if err := r.ConfirmValidation(ctx, "orders", "hook", "wrong"); status(err) != 403 {
			t.Errorf("wrong code: %v, want 403", err)
		}
		c.advance(ValidationURLLifetime + time.Second)
		if err := r.ConfirmValidation(ctx, "orders", "hook", codes[0]); status(err) != 400 || !strings.Contains(err.Error(), "expired") {
			t.Errorf("expired URL: %v, want 400 saying it expired", err)
		}
		// Writing it again validates again, with a new code.
		if _, _, err := r.PutSubscription(ctx, "orders", subscription("hook"), "", false); err != nil {
			t.Fatal(err)
		}
		if calls != 2 || codes[1] == codes[0] {
			t.Fatalf("%d validations, codes %v: want a second one with a new code", calls, codes)
		}
		if err := r.ConfirmValidation(ctx, "orders", "hook", codes[1]); err != nil {
			t.Fatal(err)
		}
		if err := r.ConfirmValidation(ctx, "orders", "hook", codes[1]); err != nil {
			t.Errorf("repeated confirmation: %v", err)
		}
		s, err := r.GetSubscription(ctx, "orders", "hook", false)
		if err != nil || s.Properties.ProvisioningState != ProvisioningSucceeded || s.Properties.ProvisioningMessage != "" {
			t.Fatalf("after confirmation: %+v %v", s.Properties, err)
		}
		// Same endpoint: no new handshake. New endpoint: validated again.
		same := subscription("hook")
		same.Properties.Labels = []string{"x"}
		if _, _, err := r.PutSubscription(ctx, "orders", same, "", false); err != nil || calls != 2 {
			t.Errorf("an update that keeps the endpoint: %v, %d validations (want still 2)", err, calls)
		}
		moved := subscription("hook")
		moved.Properties.Destination.Properties.EndpointURL = "https://elsewhere.example/hook"
		got, _, err = r.PutSubscription(ctx, "orders", moved, "", false)
		if err != nil || calls != 3 || got.Properties.ProvisioningState != ProvisioningAwaitingManualAction {
			t.Errorf("a new endpoint: %v, %d validations, state %s", err, calls, got.Properties.ProvisioningState)
		}
		// The opt-out skips it.
		skip := subscription("local")
		skip.Properties.Destination.Properties.SkipEndpointValidation = true
		got, _, err = r.PutSubscription(ctx, "orders", skip, "", false)
		if err != nil || calls != 3 || got.Properties.ProvisioningState != ProvisioningSucceeded {
			t.Errorf("skipEndpointValidation: %v, %d validations, state %s", err, calls, got.Properties.ProvisioningState)
		}
	})
}
