package dispatch

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/sluicehq/sluice/schemas"
)

// Deliveries are signed per Standard Webhooks (standardwebhooks.com):
//
//	webhook-id:        the message id, the same on every attempt
//	webhook-timestamp: unix seconds of this attempt
//	webhook-signature: v1,<base64 HMAC-SHA256 of "<id>.<timestamp>.<body>">
//
// keyed with the base64-decoded part of each whsec_ secret. During a
// rotation two secrets are valid: both signatures are sent, space
// separated, and a receiver accepts the message if one verifies.

// signatureHeaders sets the Standard Webhooks headers on h.
func signatureHeaders(h http.Header, id string, at time.Time, body []byte, secrets []string) error {
	ts := strconv.FormatInt(at.Unix(), 10)
	sigs := make([]string, 0, len(secrets))
	for _, s := range secrets {
		sig, err := sign(s, id, ts, body)
		if err != nil {
			return err
		}
		sigs = append(sigs, sig)
	}
	h.Set("webhook-id", id)
	h.Set("webhook-timestamp", ts)
	h.Set("webhook-signature", strings.Join(sigs, " "))
	return nil
}

// sign returns "v1,<signature>" of one message with one whsec_ secret.
func sign(secret, id, timestamp string, body []byte) (string, error) {
	key, err := base64.StdEncoding.DecodeString(strings.TrimPrefix(secret, schemas.SigningSecretPrefix))
	if err != nil {
		return "", fmt.Errorf("dispatch: signing secret is not whsec_<base64>: %w", err)
	}
	mac := hmac.New(sha256.New, key)
	mac.Write([]byte(id))
	mac.Write([]byte{'.'})
	mac.Write([]byte(timestamp))
	mac.Write([]byte{'.'})
	mac.Write(body)
	return "v1," + base64.StdEncoding.EncodeToString(mac.Sum(nil)), nil
}

// messageID names a delivery for webhook-id: the event's id for one event,
// a digest of the ids for a batch. Retries send the same batch, so the id
// is the same on every attempt, which is what receivers deduplicate by.
func messageID(events []*Event) string {
	if len(events) == 1 {
		return events[0].ID
	}
	h := sha256.New()
	for _, e := range events {
		h.Write([]byte(e.ID))
		h.Write([]byte{0})
	}
	return "batch_" + hex.EncodeToString(h.Sum(nil)[:16])
}
