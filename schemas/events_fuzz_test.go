package schemas

import (
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"strconv"
	"strings"
	"testing"
	"time"
)

// checkParseError checks that a parse error is what the API can answer
// with: a non-empty *ValidationError of messages.
func checkParseError(t *testing.T, err error) {
	t.Helper()
	var verr *ValidationError
	if !errors.As(err, &verr) || len(verr.Errors) == 0 || len(verr.Errors) > maxDecodeErrors {
		t.Fatalf("error %v is not a *ValidationError of 1 to %d problems", err, maxDecodeErrors)
	}
	for _, fe := range verr.Errors {
		if fe.Message == "" {
			t.Fatalf("problem without a message: %#v", verr.Errors)
		}
	}
}

// checkKeepsEverything checks that canonical has every non-null member of
// the CloudEvent sent, with the same value, and nothing else.
func checkKeepsEverything(t *testing.T, sent []byte, ev Event) {
	t.Helper()
	in := decodeJSON(t, sent).(map[string]any)
	out := decodeJSON(t, ev.JSON).(map[string]any)
	for k, v := range in {
		if v == nil && k != memberData {
			if _, ok := out[k]; ok {
				t.Fatalf("null %s kept: %s", k, ev.JSON)
			}
			continue
		}
		got, ok := out[k]
		if n, isNum := v.(json.Number); isNum && k != memberData {
			i, _ := strconv.ParseInt(string(n), 10, 64)
			v = json.Number(strconv.FormatInt(i, 10)) // -0 is written 0
		}
		if !ok || !reflect.DeepEqual(got, v) {
			t.Fatalf("member %s: sent %v, canonical %v in %s", k, v, got, ev.JSON)
		}
	}
	for k := range out {
		if _, ok := in[k]; !ok {
			t.Fatalf("canonical has %s, which was not sent: %s", k, ev.JSON)
		}
	}
	for name, got := range map[string]string{"id": ev.ID, "source": ev.Source, "type": ev.Type, "subject": ev.Subject, "partitionkey": ev.PartitionKey} {
		if want, _ := in[name].(string); got != want {
			t.Fatalf("Event.%s = %q, sent %q", name, got, want)
		}
	}
}

var stampTime = time.Date(2026, 5, 6, 7, 8, 9, 123456789, time.FixedZone("x", 3600))

// checkToEventGrid checks ToEventGrid on a canonical CloudEvent: an error
// exactly when it has no time (and none once StampTime has given it one),
// else an Event Grid event that parses back.
func checkToEventGrid(t *testing.T, ev Event) {
	t.Helper()
	out, err := ToEventGrid(ev.JSON)
	if ev.Time.IsZero() {
		if err == nil {
			t.Fatalf("ToEventGrid(%s) without time = %s", ev.JSON, out)
		}
		if ev, err = StampTime(ev, stampTime); err != nil {
			t.Fatal(err)
		}
		checkCanonical(t, ev)
		out, err = ToEventGrid(ev.JSON)
	}
	if err != nil {
		t.Fatalf("ToEventGrid(%s): %v", ev.JSON, err)
	}
	checkEventGridFixpoint(t, out)
}

var cloudEventSeeds = []string{
	ce(``),
	ce(`,"subject":"s","time":"2026-01-02T15:04:05.123456789+01:00","datacontenttype":"application/json","data":{"a":[1,2.50,"x",null,true]}`),
	ce(`,"dataschema":"https://x/s.json#a","partitionkey":"p","ext":-2147483648,"flag":true,"str":"\u00e9\ud83d\ude00"`),
	ce(`,"datacontenttype":"application/octet-stream","data_base64":"AAEC/w=="`),
	ce(`,"data":12345678901234567890`),
	ce(`,"data":{"a":1,"a":2}`),
	ce(`,"Data":1,"data_base64":"x"`),
	ce(`,"time":"2026-01-02T15:04:05+0000","egeventtime":"2026-01-02T15:04:05+0000","dataversion":7`),
	`{"specversion":"1.0","id":"e1","source":"1a:b","type":"t","subject":null}`,
	`{"specversion":"0.3"}`,
	"{\"id\":\"\xff\"}",
	`[]`,
	``,
}

func FuzzParseCloudEvent(f *testing.F) {
	for _, s := range cloudEventSeeds {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		ev, err := ParseCloudEvent(data)
		if err != nil {
			checkParseError(t, err)
			return
		}
		checkCanonical(t, ev)
		checkKeepsEverything(t, data, ev)
		checkToEventGrid(t, ev)
	})
}

func FuzzParseCloudEventBatch(f *testing.F) {
	for _, s := range cloudEventSeeds {
		f.Add([]byte("[" + s + "]"))
	}
	f.Add([]byte("[" + strings.Join(cloudEventSeeds[:5], ",") + "]"))
	f.Add([]byte(`[{},1,"x",[],null]`))
	f.Fuzz(func(t *testing.T, data []byte) {
		evs, err := ParseCloudEventBatch(data)
		if err != nil {
			checkParseError(t, err)
			return
		}
		// Each event of an accepted batch is accepted alone, the same way.
		var raws []json.RawMessage
		if err := json.Unmarshal(data, &raws); err != nil || len(raws) != len(evs) || len(evs) == 0 {
			t.Fatalf("accepted batch: %d events, %d elements, %v", len(evs), len(raws), err)
		}
		for i, ev := range evs {
			alone, err := ParseCloudEvent(raws[i])
			if err != nil || !reflect.DeepEqual(alone, ev) {
				t.Fatalf("[%d] alone: %v\n%+v\n%+v", i, err, alone, ev)
			}
			checkCanonical(t, ev)
			checkToEventGrid(t, ev)
		}
	})
}

const fuzzTopic = "/topics/fuzz"

func FuzzParseEventGridEvents(f *testing.F) {
	for _, s := range roundTripEvents {
		f.Add([]byte("[" + s + "]"))
	}
	f.Add([]byte("[" + strings.Join(roundTripEvents[:6], ",") + "]"))
	for _, s := range []string{
		`[` + eg(`,"topic":"/TOPICS/FUZZ","metadataVersion":null,"dataVersion":null`) + `]`,
		`[` + eg(`,"eventtime":"x"`) + `]`,
		`[` + eg(`,"data":{"a":1,"a":2}`) + `]`,
		eg(``),
		`[{}]`,
		`[]`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		evs, err := ParseEventGridEvents(data, fuzzTopic)
		if err != nil {
			checkParseError(t, err)
			return
		}
		sent, ok := decodeJSON(t, data).([]any)
		if !ok || len(sent) != len(evs) {
			t.Fatalf("accepted %s as %d events", data, len(evs))
		}
		for i, ev := range evs {
			checkCanonical(t, ev)
			out, err := ToEventGrid(ev.JSON)
			if err != nil {
				t.Fatalf("[%d] ToEventGrid(%s): %v", i, ev.JSON, err)
			}
			// What was sent, with what Event Grid sets.
			want := sent[i].(map[string]any)
			want["topic"] = fuzzTopic
			want["metadataVersion"] = "1"
			if want["dataVersion"] == nil {
				want["dataVersion"] = ""
			}
			if got := decodeJSON(t, out); !reflect.DeepEqual(got, want) {
				t.Fatalf("[%d] round trip changed the event:\n sent %v\n  got %v\n via %s", i, fmt.Sprint(want), fmt.Sprint(got), ev.JSON)
			}
			checkEventGridFixpoint(t, out)
		}
	})
}
