package ingest_test

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/messaging"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"
	"github.com/Azure/azure-sdk-for-go/sdk/messaging/eventgrid/azeventgrid"
	cloudevents "github.com/cloudevents/sdk-go/v2"
	cehttp "github.com/cloudevents/sdk-go/v2/protocol/http"
)

// The real Azure Event Grid SDK publishes to sluice over TLS (a generated
// self-signed certificate), with a key and with a SAS token, in both schemas.
func TestAzureSDKInterop(t *testing.T) {
	e := newEnv(t, true, nil)
	ctx := context.Background()
	opts := &azeventgrid.ClientOptions{ClientOptions: azcore.ClientOptions{
		Transport: e.srv.Client(), // trusts the test server's certificate
		Retry:     policy.RetryOptions{MaxRetries: -1},
	}}
	egEndpoint := e.srv.URL + "/topics/egt/api/events"
	ceEndpoint := e.srv.URL + "/topics/cet/api/events"

	keyClient, err := azeventgrid.NewClientWithSharedKeyCredential(egEndpoint, azcore.NewKeyCredential(e.keys["egt"].Key1), opts)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now().UTC()
	str := func(s string) *string { return &s }
	_, err = keyClient.PublishEvents(ctx, []azeventgrid.Event{
		{ID: str("az-eg-1"), Subject: str("/orders/1"), EventType: str("Order.Created"), EventTime: &now, DataVersion: str("1.0"), Data: map[string]any{"amount": 12.5}},
		{ID: str("az-eg-2"), Subject: str("/orders/2"), EventType: str("Order.Created"), EventTime: &now, DataVersion: str("1.0"), Data: []int{1, 2}},
	}, nil)
	if err != nil {
		t.Fatalf("azeventgrid PublishEvents with key: %v", err)
	}

	ceKeyClient, err := azeventgrid.NewClientWithSharedKeyCredential(ceEndpoint, azcore.NewKeyCredential(e.keys["cet"].Key2), opts)
	if err != nil {
		t.Fatal(err)
	}
	ev, err := messaging.NewCloudEvent("/azure/sdk", "Order.Shipped", map[string]string{"carrier": "x"}, &messaging.CloudEventOptions{Subject: str("orders/3")})
	if err != nil {
		t.Fatal(err)
	}
	ev.ID = "az-ce-1"
	if _, err := ceKeyClient.PublishCloudEvents(ctx, []messaging.CloudEvent{ev}, nil); err != nil {
		t.Fatalf("azeventgrid PublishCloudEvents with key: %v", err)
	}

	token := sas(ceEndpoint, e.keys["cet"].Key1, time.Now().Add(time.Hour).UTC().Format(time.RFC3339))
	sasClient, err := azeventgrid.NewClientWithSAS(ceEndpoint, azcore.NewSASCredential(token), opts)
	if err != nil {
		t.Fatal(err)
	}
	ev.ID = "az-ce-2"
	if _, err := sasClient.PublishCloudEvents(ctx, []messaging.CloudEvent{ev}, nil); err != nil {
		t.Fatalf("azeventgrid PublishCloudEvents with SAS: %v", err)
	}

	// A wrong key is refused, and the SDK surfaces Event Grid's error.
	bad, _ := azeventgrid.NewClientWithSharedKeyCredential(ceEndpoint, azcore.NewKeyCredential(e.keys["egt"].Key1), opts)
	ev.ID = "az-ce-3"
	_, err = bad.PublishCloudEvents(ctx, []messaging.CloudEvent{ev}, nil)
	var re *azcore.ResponseError
	if !asResponseError(err, &re) || re.StatusCode != 401 {
		t.Fatalf("wrong key: %v, want a 401 ResponseError", err)
	}

	if got := strings.Join(sortedCopy(e.stored(t, "egt")), ","); got != "az-eg-1,az-eg-2" {
		t.Fatalf("eg topic holds %s", got)
	}
	if got := strings.Join(sortedCopy(e.stored(t, "cet")), ","); got != "az-ce-1,az-ce-2" {
		t.Fatalf("ce topic holds %s", got)
	}
}

func asResponseError(err error, re **azcore.ResponseError) bool {
	if err == nil {
		return false
	}
	r, ok := err.(*azcore.ResponseError)
	if ok {
		*re = r
	}
	return ok
}

// The CloudEvents Go SDK publishes in binary, structured and batched mode.
func TestCloudEventsSDKInterop(t *testing.T) {
	e := newEnv(t, false, nil)
	ctx := context.Background()
	p, err := cehttp.New(cehttp.WithTarget(e.srv.URL+"/topics/cet/events"), cehttp.WithHeader("aeg-sas-key", e.keys["cet"].Key1))
	if err != nil {
		t.Fatal(err)
	}
	c, err := cloudevents.NewClient(p)
	if err != nil {
		t.Fatal(err)
	}
	mk := func(id string) cloudevents.Event {
		ev := cloudevents.NewEvent()
		ev.SetID(id)
		ev.SetSource("/sdk-go")
		ev.SetType("order.created")
		ev.SetTime(time.Now())
		ev.SetExtension("partitionkey", "cust-1")
		if err := ev.SetData(cloudevents.ApplicationJSON, map[string]int{"n": 1}); err != nil {
			t.Fatal(err)
		}
		return ev
	}
	if res := c.Send(cloudevents.WithEncodingBinary(ctx), mk("sdk-binary")); !cloudevents.IsACK(res) {
		t.Fatalf("binary: %v", res)
	}
	if res := c.Send(cloudevents.WithEncodingStructured(ctx), mk("sdk-structured")); !cloudevents.IsACK(res) {
		t.Fatalf("structured: %v", res)
	}
	// Batched mode: the SDK's own JSON encoding of each event, as an array.
	body, err := json.Marshal([]cloudevents.Event{mk("sdk-batch-1"), mk("sdk-batch-2")})
	if err != nil {
		t.Fatal(err)
	}
	req, _ := http.NewRequest("POST", e.srv.URL+"/topics/cet/events", bytes.NewReader(body))
	req.Header.Set("Content-Type", cloudevents.ApplicationCloudEventsBatchJSON)
	req.Header.Set("aeg-sas-key", e.keys["cet"].Key1)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("batch: %d", resp.StatusCode)
	}
	want := "sdk-batch-1,sdk-batch-2,sdk-binary,sdk-structured"
	if got := strings.Join(sortedCopy(e.stored(t, "cet")), ","); got != want {
		t.Fatalf("stored %s, want %s", got, want)
	}
}
