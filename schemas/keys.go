package schemas

import (
	"crypto/rand"
	"encoding/base64"
)

// NewTopicKey returns a new topic access key: the standard base64 of 32
// random bytes, 44 characters, the shape of Event Grid's keys.
func NewTopicKey() string {
	return base64.StdEncoding.EncodeToString(randomBytes(32))
}

// NewSigningSecret returns a new Standard Webhooks signing secret: whsec_
// and the standard base64 of 32 random bytes (the HMAC key).
func NewSigningSecret() string {
	return SigningSecretPrefix + base64.StdEncoding.EncodeToString(randomBytes(32))
}

func randomBytes(n int) []byte {
	b := make([]byte, n)
	rand.Read(b) // never returns an error; it crashes the program instead
	return b
}
