package dispatch

import (
	"context"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	standardwebhooks "github.com/standard-webhooks/standard-webhooks/libraries/go"

	"github.com/sluicehq/sluice/schemas"
)

// The Standard Webhooks specification's published test vector.
func TestSignMatchesTheSpecificationVector(t *testing.T) {
	got, err := sign("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", "msg_p5jXN8AQM9LWM0D4loKWxJek", "1614265330", []byte(`{"test": 2432232314}`))
	if err != nil {
		t.Fatal(err)
	}
	if want := "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="; got != want {
		t.Errorf("signature %s, want %s", got, want)
	}
	if _, err := sign("whsec_not base64!", "id", "1", nil); err == nil {
		t.Error("a secret that is not base64 signed something")
	}
}

// signedReceiver verifies every delivery with the Standard Webhooks
// reference library, once per secret it is told about.
type signedReceiver struct {
	*receiver
	mu       sync.Mutex
	secrets  []string
	verified map[string]int // secret → deliveries it verified
	sigs     []int          // signatures per delivery
}

func newSignedReceiver(t *testing.T, secrets ...string) *signedReceiver {
	sr := &signedReceiver{secrets: secrets, verified: map[string]int{}}
	sr.receiver = newInspectingReceiver(t, nil, func(r *http.Request, body []byte) {
		sr.mu.Lock()
		sr.sigs = append(sr.sigs, len(strings.Fields(r.Header.Get("webhook-signature"))))
		for _, s := range sr.secrets {
			wh, err := standardwebhooks.NewWebhook(s)
			if err != nil {
				t.Error(err)
				continue
			}
			if wh.Verify(body, r.Header) == nil {
				sr.verified[s]++
			}
		}
		sr.mu.Unlock()
	})
	return sr
}

func (sr *signedReceiver) counts() (map[string]int, []int) {
	sr.mu.Lock()
	defer sr.mu.Unlock()
	out := map[string]int{}
	for k, v := range sr.verified {
		out[k] = v
	}
	return out, append([]int(nil), sr.sigs...)
}

// Deliveries verify with an independent implementation; during a rotation
// they carry both signatures, and after the overlap only the new one.
func TestSignedDeliveriesAndRotation(t *testing.T) {
	e := newEnv(t, memStore(), 1)
	first := schemas.NewSigningSecret()
	rc := newSignedReceiver(t, first)
	e.subscribe("signed", rc.URL, func(s *schemas.Subscription) { s.Properties.SigningSecret = first })
	d := startDispatcher(t, e.elog, testConfig("w1"), RealClock{}, e.snapshot())
	e.publish(3, "t")
	waitFor(t, "3 deliveries", 10*time.Second, func() bool { return len(rc.delivered()) == 3 })
	if v, sigs := rc.counts(); v[first] != 3 || sigs[0] != 1 {
		t.Fatalf("before rotation: verified %v, signatures per delivery %v", v, sigs)
	}

	second, _, err := e.reg.RotateSigningSecret(context.Background(), e.topic, "signed", time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	rc.mu.Lock()
	rc.secrets = append(rc.secrets, second)
	rc.mu.Unlock()
	d.d.Update(e.snapshot())
	e.publish(3, "t")
	waitFor(t, "6 deliveries", 10*time.Second, func() bool { return len(rc.delivered()) == 6 })
	if v, sigs := rc.counts(); v[first] != 6 || v[second] != 3 || sigs[5] != 2 {
		t.Fatalf("during the overlap: verified %v (want the old secret on all 6, the new on the last 3), signatures %v", v, sigs)
	}

	third, _, err := e.reg.RotateSigningSecret(context.Background(), e.topic, "signed", 0)
	if err != nil {
		t.Fatal(err)
	}
	rc.mu.Lock()
	rc.secrets = append(rc.secrets, third)
	rc.mu.Unlock()
	d.d.Update(e.snapshot())
	e.publish(3, "t")
	waitFor(t, "9 deliveries", 10*time.Second, func() bool { return len(rc.delivered()) == 9 })
	if v, sigs := rc.counts(); v[third] != 3 || v[second] != 3 || v[first] != 6 || sigs[8] != 1 {
		t.Fatalf("after a rotation without overlap: verified %v, signatures %v", v, sigs)
	}
	if _, _, err := e.reg.RotateSigningSecret(context.Background(), e.topic, "signed", 8*24*time.Hour); err == nil {
		t.Error("an overlap of 8 days was accepted")
	}
}
