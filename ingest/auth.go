package ingest

import (
	"crypto/hmac"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/sluicehq/sluice/apierr"
	"github.com/sluicehq/sluice/schemas"
)

// authenticate checks a publish request against the topic's two keys, as
// Event Grid does: the key itself (aeg-sas-key header or query parameter),
// or a SAS token (aeg-sas-token header, or Authorization:
// SharedAccessSignature r=…&e=…&s=…) signed with either key. Keys and tokens
// are compared in constant time and never logged.
func authenticate(r *http.Request, topic string, keys schemas.TopicKeys, now time.Time) error {
	if key := r.Header.Get("aeg-sas-key"); key != "" {
		return checkKey(key, keys)
	}
	if key := r.URL.Query().Get("aeg-sas-key"); key != "" {
		return checkKey(key, keys)
	}
	token := r.Header.Get("aeg-sas-token")
	if token == "" {
		if a, ok := strings.CutPrefix(r.Header.Get("Authorization"), "SharedAccessSignature "); ok {
			token = strings.TrimSpace(a)
		}
	}
	if token == "" {
		return apierr.Unauthorized("missing topic key: send the header aeg-sas-key: <key1 or key2> (see `sluice topic keys " + topic + "`), or a SAS token in aeg-sas-token")
	}
	return checkSAS(token, topic, keys, now)
}

func checkKey(key string, keys schemas.TopicKeys) error {
	// Compare against both keys every time, so timing says nothing about which matched.
	a := subtle.ConstantTimeCompare([]byte(key), []byte(keys.Key1))
	b := subtle.ConstantTimeCompare([]byte(key), []byte(keys.Key2))
	if a|b == 1 && keys.Key1 != "" {
		return nil
	}
	return apierr.Unauthorized("the topic key is not valid: use key1 or key2 of this topic")
}

// checkSAS verifies "r=<url-encoded resource>&e=<url-encoded expiry>&s=<url-encoded
// base64 HMAC-SHA256 of 'r=…&e=…' keyed with the base64-decoded topic key>".
func checkSAS(token, topic string, keys schemas.TopicKeys, now time.Time) error {
	bad := func(why string) error {
		return apierr.Unauthorized("the SAS token is not valid: " + why)
	}
	i := strings.LastIndex(token, "&s=")
	if i < 0 || !strings.HasPrefix(token, "r=") {
		return bad("want r=<resource>&e=<expiry>&s=<signature>")
	}
	signed, sigEnc := token[:i], token[i+3:]
	fields, err := url.ParseQuery(signed)
	if err != nil || len(fields["r"]) != 1 || len(fields["e"]) != 1 {
		return bad("want r=<resource>&e=<expiry>&s=<signature>")
	}
	sig, err := url.QueryUnescape(sigEnc)
	if err != nil {
		return bad("the signature is not URL-encoded")
	}
	expiry, err := parseExpiry(fields["e"][0])
	if err != nil {
		return bad(err.Error())
	}
	if !now.Before(expiry) {
		return bad(fmt.Sprintf("it expired at %s", expiry.UTC().Format(time.RFC3339)))
	}
	if !resourceNamesTopic(fields["r"][0], topic) {
		return bad(fmt.Sprintf("its resource %q is not this topic's endpoint (…/topics/%s/…)", fields["r"][0], topic))
	}
	want, err := base64.StdEncoding.DecodeString(sig)
	if err != nil {
		return bad("the signature is not base64")
	}
	ok := 0
	for _, k := range []string{keys.Key1, keys.Key2} {
		raw, err := base64.StdEncoding.DecodeString(k)
		if err != nil || k == "" {
			continue
		}
		mac := hmac.New(sha256.New, raw)
		mac.Write([]byte(signed))
		ok |= subtle.ConstantTimeCompare(mac.Sum(nil), want)
	}
	if ok != 1 {
		return bad("the signature does not match key1 or key2 of this topic")
	}
	return nil
}

// parseExpiry accepts the formats SAS generators use: Microsoft's samples
// ("1/2/2026 3:04:05 PM", UTC), RFC 3339 (the Azure SDK's tests), and Unix seconds.
func parseExpiry(s string) (time.Time, error) {
	if t, err := time.Parse(time.RFC3339, s); err == nil {
		return t, nil
	}
	if t, err := time.ParseInLocation("1/2/2006 3:04:05 PM", s, time.UTC); err == nil {
		return t, nil
	}
	if n, err := strconv.ParseInt(s, 10, 64); err == nil {
		return time.Unix(n, 0), nil
	}
	return time.Time{}, errors.New("its expiry e= is not a time (use RFC 3339, e.g. 2026-01-02T15:04:05Z)")
}

// resourceNamesTopic reports whether a SAS resource is an endpoint of the
// topic: a URL whose path starts with /topics/<topic>/ (any host, since
// sluice may be behind a proxy).
func resourceNamesTopic(resource, topic string) bool {
	u, err := url.Parse(resource)
	if err != nil {
		return false
	}
	p := strings.ToLower(u.Path)
	return strings.HasPrefix(p, "/topics/"+strings.ToLower(topic)+"/") || p == "/topics/"+strings.ToLower(topic)
}
