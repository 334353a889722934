package main

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"io"
	"math/big"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/messaging"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"
	"github.com/Azure/azure-sdk-for-go/sdk/messaging/eventgrid/azeventgrid"
)

// These tests use the real binary the way the README tells a user to.

const e2eToken = "e2e-token"

// `sluice serve` over HTTPS with a self-signed certificate; the real Azure
// Event Grid SDK publishes to it with keys and SAS tokens in both schemas;
// after a graceful stop every acknowledged event is in the log.
func TestE2ETLSWithAzureSDK(t *testing.T) {
	dir := t.TempDir()
	certFile, keyFile, roots := e2eCertificate(t, dir)
	store := filepath.Join(dir, "store")
	s := startServe(t, []string{"SLUICE_TOKEN=" + e2eToken}, "--tls-cert", certFile, "--tls-key", keyFile, "--store", store)
	if !strings.HasPrefix(s.base, "https://127.0.0.1:") {
		t.Fatalf("banner names %q, want an https://127.0.0.1 URL:\n%s", s.base, s.output())
	}
	client := &http.Client{
		Timeout:   30 * time.Second,
		Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: roots}},
	}
	ctx := context.Background()

	// The certificate is what secures the connection: without trusting it
	// there is no connection, and plain HTTP gets no answer from the API.
	var unknownCA x509.UnknownAuthorityError
	if _, err := http.Get(s.base + "/healthz"); !errors.As(err, &unknownCA) {
		t.Fatalf("GET over TLS without trusting the certificate: %v, want an unknown-authority error", err)
	}
	plain := "http://" + strings.TrimPrefix(s.base, "https://")
	if resp, err := http.Get(plain + "/api/topics"); err == nil {
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusBadRequest || strings.Contains(string(body), "value") {
			t.Fatalf("plain HTTP to the TLS port: %d %s, want 400 and no API answer", resp.StatusCode, body)
		}
	}
	if code, body := e2eCall(t, client, "GET", s.base+"/healthz", "", ""); code != 200 {
		t.Fatalf("GET /healthz over TLS: %d %s", code, body)
	}

	// Two topics through the admin API; they advertise HTTPS endpoints.
	type topicInfo struct{ endpoint, key1, key2 string }
	topics := map[string]*topicInfo{}
	for name, schema := range map[string]string{"egtopic": "EventGridSchema", "cetopic": "CloudEventSchemaV1_0"} {
		code, body := e2eCall(t, client, "PUT", s.base+"/api/topics/"+name, e2eToken,
			`{"name":"`+name+`","properties":{"inputSchema":"`+schema+`"}}`)
		var tp struct {
			Properties struct{ InputSchema, Endpoint string }
		}
		if code != 201 || json.Unmarshal([]byte(body), &tp) != nil {
			t.Fatalf("create topic %s: %d %s", name, code, body)
		}
		if want := s.base + "/topics/" + name + "/api/events"; tp.Properties.Endpoint != want || tp.Properties.InputSchema != schema {
			t.Fatalf("topic %s: endpoint %q schema %q, want %q and %q", name, tp.Properties.Endpoint, tp.Properties.InputSchema, want, schema)
		}
		code, body = e2eCall(t, client, "POST", s.base+"/api/topics/"+name+"/listKeys", e2eToken, "")
		var k struct{ Key1, Key2 string }
		if code != 200 || json.Unmarshal([]byte(body), &k) != nil || k.Key1 == "" || k.Key2 == "" || k.Key1 == k.Key2 {
			t.Fatalf("keys of %s: %d %s", name, code, body)
		}
		topics[name] = &topicInfo{tp.Properties.Endpoint, k.Key1, k.Key2}
	}
	eg, ce := topics["egtopic"], topics["cetopic"]

	opts := &azeventgrid.ClientOptions{ClientOptions: azcore.ClientOptions{
		Transport: client,
		Retry:     policy.RetryOptions{MaxRetries: -1},
	}}
	withKey := func(endpoint, key string) *azeventgrid.Client {
		c, err := azeventgrid.NewClientWithSharedKeyCredential(endpoint, azcore.NewKeyCredential(key), opts)
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	withSAS := func(endpoint, key string, expiry time.Time) *azeventgrid.Client {
		c, err := azeventgrid.NewClientWithSAS(endpoint, azcore.NewSASCredential(e2eSAS(endpoint, key, expiry)), opts)
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	str := func(s string) *string { return &s }
	now := time.Now().UTC()
	egEvent := func(id string) azeventgrid.Event {
		return azeventgrid.Event{ID: str(id), Subject: str("/orders/" + id), EventType: str("Order.Created"),
			EventTime: &now, DataVersion: str("1.0"), Data: map[string]any{"id": id}}
	}
	ceEvent := func(id string) messaging.CloudEvent {
		ev, err := messaging.NewCloudEvent("/azure/sdk", "Order.Shipped", map[string]string{"id": id}, nil)
		if err != nil {
			t.Fatal(err)
		}
		ev.ID = id
		return ev
	}

	if _, err := withKey(eg.endpoint, eg.key1).PublishEvents(ctx, []azeventgrid.Event{egEvent("eg-key-1"), egEvent("eg-key-2")}, nil); err != nil {
		t.Fatalf("PublishEvents with key1: %v", err)
	}
	if _, err := withSAS(eg.endpoint, eg.key2, now.Add(time.Hour)).PublishEvents(ctx, []azeventgrid.Event{egEvent("eg-sas-1")}, nil); err != nil {
		t.Fatalf("PublishEvents with a SAS token of key2: %v", err)
	}
	if _, err := withKey(ce.endpoint, ce.key2).PublishCloudEvents(ctx, []messaging.CloudEvent{ceEvent("ce-key-1"), ceEvent("ce-key-2")}, nil); err != nil {
		t.Fatalf("PublishCloudEvents with key2: %v", err)
	}
	if _, err := withSAS(ce.endpoint, ce.key1, now.Add(time.Hour)).PublishCloudEvents(ctx, []messaging.CloudEvent{ceEvent("ce-sas-1")}, nil); err != nil {
		t.Fatalf("PublishCloudEvents with a SAS token of key1: %v", err)
	}

	// Refusals: another topic's key, an expired token, and a key over plain
	// HTTP (the SDK will not send it; had it, the TLS port would not answer).
	var re *azcore.ResponseError
	_, err := withKey(ce.endpoint, eg.key1).PublishCloudEvents(ctx, []messaging.CloudEvent{ceEvent("ce-wrong-key")}, nil)
	if !errors.As(err, &re) || re.StatusCode != 401 {
		t.Fatalf("another topic's key: %v, want a 401", err)
	}
	_, err = withSAS(ce.endpoint, ce.key1, now.Add(-time.Minute)).PublishCloudEvents(ctx, []messaging.CloudEvent{ceEvent("ce-expired")}, nil)
	if !errors.As(err, &re) || re.StatusCode != 401 {
		t.Fatalf("expired SAS token: %v, want a 401", err)
	}
	_, err = withKey(plain+"/topics/cetopic/api/events", ce.key1).PublishCloudEvents(ctx, []messaging.CloudEvent{ceEvent("ce-plain")}, nil)
	if err == nil {
		t.Fatal("the SDK published with a key over plain HTTP")
	}

	if err := s.stop(t); err != nil {
		t.Fatalf("exit after SIGTERM: %v, want status 0\n%s", err, s.output())
	}
	for name, want := range map[string][]string{
		"egtopic": {"eg-key-1", "eg-key-2", "eg-sas-1"},
		"cetopic": {"ce-key-1", "ce-key-2", "ce-sas-1"},
	} {
		got := tailAll(t, store, name)
		slices.Sort(got)
		slices.Sort(want)
		if !slices.Equal(got, want) {
			t.Errorf("topic %s holds %v, want %v", name, got, want)
		}
	}
}

// e2eCertificate writes a self-signed certificate for 127.0.0.1 and
// localhost, and its key, as PEM files in dir, and returns their paths and
// a pool that trusts the certificate.
func e2eCertificate(t *testing.T, dir string) (certFile, keyFile string, roots *x509.CertPool) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 62))
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	tmpl := &x509.Certificate{
		SerialNumber:          serial,
		Subject:               pkix.Name{CommonName: "sluice e2e"},
		NotBefore:             now.Add(-time.Minute),
		NotAfter:              now.Add(time.Hour),
		KeyUsage:              x509.KeyUsageDigitalSignature,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true,
		IPAddresses:           []net.IP{net.ParseIP("127.0.0.1")},
		DNSNames:              []string{"localhost"},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	certFile, keyFile = filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	if err := os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER}), 0o600); err != nil {
		t.Fatal(err)
	}
	roots = x509.NewCertPool()
	roots.AddCert(cert)
	return certFile, keyFile, roots
}

// e2eSAS is an Event Grid SAS token for resource, signed with key, as
// Microsoft documents it.
func e2eSAS(resource, key string, expiry time.Time) string {
	signed := "r=" + url.QueryEscape(resource) + "&e=" + url.QueryEscape(expiry.UTC().Format(time.RFC3339))
	raw, _ := base64.StdEncoding.DecodeString(key)
	mac := hmac.New(sha256.New, raw)
	mac.Write([]byte(signed))
	return signed + "&s=" + url.QueryEscape(base64.StdEncoding.EncodeToString(mac.Sum(nil)))
}

// e2eCall sends one request with client and returns the status and body.
func e2eCall(t *testing.T, client *http.Client, method, url, token, body string) (int, string) {
	t.Helper()
	req, err := http.NewRequest(method, url, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := client.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, url, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("%s %s: read answer: %v", method, url, err)
	}
	return resp.StatusCode, string(b)
}

// quickStartServe starts the server of the quick start, in a terminal of
// its own. With SLUICE_TOKEN set (as the test does) it uses that token;
// otherwise it prints one to export.
const quickStartServe = "sluice serve --dev-echo --store ./sluice-data"

// quickStart is the README's quick start, after quickStartServe, in the
// same directory, with the admin token exported:
//
//	export SLUICE_TOKEN=<the token sluice serve printed>
//
// TestE2ECLIQuickStart runs each line with sh, as written, except that
// the server's default address http://127.0.0.1:8080 stands for the one
// the test's server got (and $SLUICE_SERVER names it).
var quickStart = []string{
	// A topic: CloudEvents in, 4 partitions, 7 days' retention by default.
	"sluice topic create orders",
	"sluice topic list",
	"sluice topic show orders -o json",
	// Publishers send key1 or key2; rotate one while they use the other.
	"sluice topic keys orders",
	"sluice topic keys orders --regenerate key2",
	// Subscribe the development receiver (--dev-echo) to one event type.
	"sluice sub create orders echo --endpoint http://127.0.0.1:8080/dev/echo --event-types order.created",
	"sluice sub list orders",
	"sluice sub show orders echo -o json",
	// A receiver that refuses everything (400): its events are dead-lettered at once.
	"sluice sub create orders picky --endpoint 'http://127.0.0.1:8080/dev/echo?status=400'",
	// Publish: any JSON value becomes the data of a new CloudEvent...
	`sluice publish orders '{"amount":12}' '{"amount":13}'`,
	// ...and a CloudEvent is sent as is, here from standard input.
	`echo '{"specversion":"1.0","id":"x1","source":"/s","type":"order.created"}' | sluice publish orders -f -`,
	// Read the topic straight from the store, one stored event per line.
	"sluice tail orders --store ./sluice-data -o json",
	// What could not be delivered, and why.
	"sluice dlq list orders picky --store ./sluice-data -o json",
	// Mistakes say what is wrong: an invalid field, a wrong admin token.
	"sluice sub create orders bad --endpoint ftp://x",
	"SLUICE_TOKEN=wrong sluice topic list",
	// Clean up.
	"sluice sub delete orders echo",
	"sluice topic delete orders",
	"sluice topic list -o json",
}

// e2eRun is how one shell line ended.
type e2eRun struct {
	stdout, stderr string
	code           int
}

// The README quick start, run with the real binary from a shell, each
// line's output checked.
func TestE2ECLIQuickStart(t *testing.T) {
	work := t.TempDir()
	args := strings.Fields(quickStartServe)[2:] // after "sluice serve"
	for i, a := range args {
		if strings.HasPrefix(a, "./") {
			args[i] = filepath.Join(work, a)
		}
	}
	s := startServe(t, []string{"SLUICE_TOKEN=" + e2eToken}, args...)
	const defaultBase = "http://127.0.0.1:8080"

	env := []string{"PATH=" + filepath.Dir(sluiceBinary(t)) + string(os.PathListSeparator) + os.Getenv("PATH")}
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "SLUICE_") && !strings.HasPrefix(kv, "PATH=") {
			env = append(env, kv)
		}
	}
	env = append(env, "SLUICE_SERVER="+s.base, "SLUICE_TOKEN="+e2eToken)
	endpoint := s.base + "/topics/orders/api/events"
	echo := s.base + "/dev/echo"

	ok := func(t *testing.T, r e2eRun) {
		t.Helper()
		if r.code != 0 {
			t.Fatalf("exit status %d\nstdout:\n%s\nstderr:\n%s", r.code, r.stdout, r.stderr)
		}
	}
	contains := func(t *testing.T, what, got string, wants ...string) {
		t.Helper()
		for _, w := range wants {
			if !strings.Contains(got, w) {
				t.Fatalf("%s lacks %q:\n%s", what, w, got)
			}
		}
	}
	var keys [2]string
	checks := map[string]func(*testing.T, e2eRun){
		"sluice topic create orders": func(t *testing.T, r e2eRun) {
			ok(t, r)
			contains(t, "stdout", r.stdout, "orders", "CloudEventSchemaV1_0", endpoint, "key1:", "key2:", "aeg-sas-key")
		},
		"sluice topic list": func(t *testing.T, r e2eRun) {
			ok(t, r)
			lines := strings.Split(strings.TrimSpace(r.stdout), "\n")
			if len(lines) != 2 || !strings.HasPrefix(lines[0], "NAME") || strings.Join(strings.Fields(lines[1]), " ") != "orders CloudEventSchemaV1_0 4 7d "+endpoint {
				t.Fatalf("want a header and one row for orders:\n%s", r.stdout)
			}
		},
		"sluice topic show orders -o json": func(t *testing.T, r e2eRun) {
			ok(t, r)
			var tp struct {
				Name       string
				Properties struct {
					InputSchema     string
					Partitions      int
					RetentionInDays int
					Endpoint        string
				}
			}
			if err := json.Unmarshal([]byte(r.stdout), &tp); err != nil {
				t.Fatalf("not JSON: %v\n%s", err, r.stdout)
			}
			p := tp.Properties
			if tp.Name != "orders" || p.InputSchema != "CloudEventSchemaV1_0" || p.Partitions != 4 || p.RetentionInDays != 7 || p.Endpoint != endpoint {
				t.Fatalf("topic %+v", tp)
			}
		},
		"sluice topic keys orders": func(t *testing.T, r e2eRun) {
			ok(t, r)
			keys = e2eKeys(t, r.stdout)
		},
		"sluice topic keys orders --regenerate key2": func(t *testing.T, r e2eRun) {
			ok(t, r)
			got := e2eKeys(t, r.stdout)
			if got[0] != keys[0] || got[1] == keys[1] {
				t.Fatalf("regenerating key2 turned keys %q into %q: want key1 kept and key2 new", keys, got)
			}
		},
		"sluice sub create orders echo --endpoint http://127.0.0.1:8080/dev/echo --event-types order.created": func(t *testing.T, r e2eRun) {
			ok(t, r)
			contains(t, "stdout", r.stdout, "echo", echo, "order.created", "Signing secret")
		},
		"sluice sub list orders": func(t *testing.T, r e2eRun) {
			ok(t, r)
			lines := strings.Split(strings.TrimSpace(r.stdout), "\n")
			if len(lines) != 2 || !strings.HasPrefix(lines[0], "NAME") || !strings.HasPrefix(lines[1], "echo ") {
				t.Fatalf("want a header and one row for echo:\n%s", r.stdout)
			}
			contains(t, "the row", lines[1], echo, "types=order.created")
		},
		"sluice sub show orders echo -o json": func(t *testing.T, r e2eRun) {
			ok(t, r)
			var sub struct {
				Name       string
				Properties struct {
					Destination struct {
						EndpointType string
						Properties   struct{ EndpointURL string }
					}
					Filter        struct{ IncludedEventTypes []string }
					SigningSecret string
				}
			}
			if err := json.Unmarshal([]byte(r.stdout), &sub); err != nil {
				t.Fatalf("not JSON: %v\n%s", err, r.stdout)
			}
			p := sub.Properties
			if sub.Name != "echo" || p.Destination.EndpointType != "WebHook" || p.Destination.Properties.EndpointURL != echo ||
				!slices.Equal(p.Filter.IncludedEventTypes, []string{"order.created"}) {
				t.Fatalf("subscription:\n%s", r.stdout)
			}
			if p.SigningSecret != "" {
				t.Fatalf("show without --secrets printed the signing secret:\n%s", r.stdout)
			}
		},
		`sluice publish orders '{"amount":12}' '{"amount":13}'`: func(t *testing.T, r e2eRun) {
			ok(t, r)
			contains(t, "stderr", r.stderr, "published 2 events to orders")
		},
		`echo '{"specversion":"1.0","id":"x1","source":"/s","type":"order.created"}' | sluice publish orders -f -`: func(t *testing.T, r e2eRun) {
			ok(t, r)
			contains(t, "stderr", r.stderr, "published 1 event to orders")
		},
		"sluice tail orders --store ./sluice-data -o json": func(t *testing.T, r e2eRun) {
			ok(t, r)
			var amounts []string
			var x1 int
			lines := strings.Split(strings.TrimSpace(r.stdout), "\n")
			for _, line := range lines {
				var ev struct {
					SpecVersion, ID, Source, Type string
					Data                          json.RawMessage
				}
				if err := json.Unmarshal([]byte(line), &ev); err != nil || ev.SpecVersion != "1.0" || ev.ID == "" {
					t.Fatalf("not a CloudEvent: %q", line)
				}
				switch {
				case ev.ID == "x1" && ev.Source == "/s" && ev.Type == "order.created" && ev.Data == nil:
					x1++
				case ev.ID != "x1" && ev.Type == "sluice.cli.event":
					amounts = append(amounts, string(ev.Data))
				default:
					t.Fatalf("unexpected event: %s", line)
				}
			}
			slices.Sort(amounts)
			if len(lines) != 3 || x1 != 1 || !slices.Equal(amounts, []string{`{"amount":12}`, `{"amount":13}`}) {
				t.Fatalf("want x1 and two events with amounts 12 and 13:\n%s", r.stdout)
			}
		},
		"sluice sub create orders picky --endpoint 'http://127.0.0.1:8080/dev/echo?status=400'": func(t *testing.T, r e2eRun) {
			ok(t, r)
			contains(t, "stdout", r.stdout, "picky", "status=400")
		},
		"sluice dlq list orders picky --store ./sluice-data -o json": func(t *testing.T, r e2eRun) {
			ok(t, r)
			lines := strings.Split(strings.TrimSpace(r.stdout), "\n")
			ids := map[string]bool{}
			for _, line := range lines {
				var dl struct {
					ID                 string
					DeadLetterReason   string
					LastHTTPStatusCode int `json:"lastHttpStatusCode"`
					DeliveryAttempts   int
				}
				if err := json.Unmarshal([]byte(line), &dl); err != nil || dl.DeadLetterReason != "NonRetriableStatusCode" || dl.LastHTTPStatusCode != 400 || dl.DeliveryAttempts != 1 {
					t.Fatalf("not a dead letter of a 400: %q", line)
				}
				ids[dl.ID] = true
			}
			if len(lines) != 3 || !ids["x1"] {
				t.Fatalf("want the 3 published events dead-lettered:\n%s", r.stdout)
			}
			// Meanwhile the echo subscription got the one order.created event.
			code, body := s.do(t, "GET", "/dev/echo", "", "")
			var got struct {
				Value []struct {
					Headers map[string]string
					Body    string
				}
			}
			if code != 200 || json.Unmarshal([]byte(body), &got) != nil {
				t.Fatalf("echo receiver: %d %s", code, body)
			}
			var toEcho []string
			for _, v := range got.Value {
				if v.Headers["Aeg-Subscription-Name"] == "ECHO" {
					toEcho = append(toEcho, v.Body)
				}
			}
			if len(toEcho) != 1 || !strings.Contains(toEcho[0], `"id":"x1"`) {
				t.Fatalf("subscription echo (order.created only): want x1 delivered once, got %q", toEcho)
			}
		},
		"sluice sub create orders bad --endpoint ftp://x": func(t *testing.T, r e2eRun) {
			if r.code == 0 || r.stdout != "" {
				t.Fatalf("exit status %d, stdout %q: want a failure and no output", r.code, r.stdout)
			}
			contains(t, "stderr", r.stderr, "endpointUrl", "https")
		},
		"SLUICE_TOKEN=wrong sluice topic list": func(t *testing.T, r e2eRun) {
			if r.code == 0 || r.stdout != "" {
				t.Fatalf("exit status %d, stdout %q: want a failure and no output", r.code, r.stdout)
			}
			contains(t, "stderr", r.stderr, "the admin token is not valid", "check --token or $SLUICE_TOKEN")
		},
		"sluice sub delete orders echo": func(t *testing.T, r e2eRun) {
			ok(t, r)
			contains(t, "stdout", r.stdout, "Deleted event subscription echo of topic orders.")
		},
		"sluice topic delete orders": func(t *testing.T, r e2eRun) {
			ok(t, r)
			contains(t, "stdout", r.stdout, "Deleted topic orders")
		},
		"sluice topic list -o json": func(t *testing.T, r e2eRun) {
			ok(t, r)
			if strings.TrimSpace(r.stdout) != "[]" {
				t.Fatalf("topics left after the clean-up:\n%s", r.stdout)
			}
		},
	}

	// Delivery is asynchronous: a line that reads its results is run again
	// until they are all there (or the deadline says they never came).
	ready := map[string]func(e2eRun) bool{
		"sluice dlq list orders picky --store ./sluice-data -o json": func(r e2eRun) bool {
			code, body := s.do(t, "GET", "/dev/echo", "", "")
			return strings.Count(r.stdout, "\n") >= 3 && code == 200 && strings.Contains(body, `\"id\":\"x1\"`)
		},
	}
	for _, line := range quickStart {
		check, found := checks[line]
		if !found {
			t.Fatalf("no check for quick-start line %q", line)
		}
		var r e2eRun
		for deadline := time.Now().Add(20 * time.Second); ; time.Sleep(100 * time.Millisecond) {
			cmd := exec.Command("sh", "-c", strings.ReplaceAll(line, defaultBase, s.base))
			cmd.Dir, cmd.Env = work, env
			var stdout, stderr strings.Builder
			cmd.Stdout, cmd.Stderr = &stdout, &stderr
			err := cmd.Run()
			var ee *exec.ExitError
			if err != nil && !errors.As(err, &ee) {
				t.Fatalf("%s: %v", line, err)
			}
			r = e2eRun{stdout: stdout.String(), stderr: stderr.String(), code: cmd.ProcessState.ExitCode()}
			if ready[line] == nil || ready[line](r) || time.Now().After(deadline) {
				break
			}
		}
		t.Run(line, func(t *testing.T) { check(t, r) })
		if t.Failed() {
			t.Fatalf("stopped at %q; server log:\n%s", line, s.output())
		}
	}
	if err := s.stop(t); err != nil {
		t.Fatalf("exit after SIGTERM: %v, want status 0\n%s", err, s.output())
	}
}

// e2eKeys reads key1 and key2 from `sluice topic keys` table output.
func e2eKeys(t *testing.T, out string) [2]string {
	t.Helper()
	var k [2]string
	for _, line := range strings.Split(out, "\n") {
		f := strings.Fields(line)
		switch {
		case len(f) == 2 && f[0] == "key1:":
			k[0] = f[1]
		case len(f) == 2 && f[0] == "key2:":
			k[1] = f[1]
		}
	}
	if k[0] == "" || k[1] == "" {
		t.Fatalf("no key1 and key2 in:\n%s", out)
	}
	return k
}
