package schemas

import (
	"fmt"
	"strings"
	"testing"
)

// benchData is event data of about 900 bytes: nested objects, strings,
// integers and decimals, as business events have.
func benchData(i int) string {
	var b strings.Builder
	fmt.Fprintf(&b, `{"orderId":"ord-%08d","customer":{"id":"cus-42","name":"Zoë Example","email":"zoe@example.com","tier":"gold"},"items":[`, i)
	for j := 0; j < 6; j++ {
		if j > 0 {
			b.WriteByte(',')
		}
		fmt.Fprintf(&b, `{"sku":"SKU-%05d","title":"Widget number %d, blue","qty":%d,"price":%d.99,"tags":["a","b"]}`, j*7919, j, j+1, 10+j)
	}
	b.WriteString(`],"total":123.45,"currency":"EUR","shipping":{"street":"1 Example Road","city":"Lisbon","zip":"1000-001"}}`)
	return b.String()
}

func benchCloudEventBatch(n int) []byte {
	evs := make([]string, n)
	for i := range evs {
		evs[i] = fmt.Sprintf(`{"specversion":"1.0","id":"%d","source":"/shop/orders","type":"com.example.order.placed",`+
			`"subject":"orders/%d","time":"2026-01-02T15:04:05.123Z","datacontenttype":"application/json","partitionkey":"cus-42","data":%s}`,
			i, i, benchData(i))
	}
	return []byte("[" + strings.Join(evs, ",") + "]")
}

func benchEventGridBatch(n int) []byte {
	evs := make([]string, n)
	for i := range evs {
		evs[i] = fmt.Sprintf(`{"id":"%d","subject":"orders/%d","eventType":"Shop.OrderPlaced","eventTime":"2026-01-02T15:04:05.123+0000",`+
			`"dataVersion":"1.0","data":%s}`, i, i, benchData(i))
	}
	return []byte("[" + strings.Join(evs, ",") + "]")
}

func reportEvents(b *testing.B, perOp int) {
	b.ReportMetric(float64(b.N)*float64(perOp)/b.Elapsed().Seconds(), "events/s")
}

// BenchmarkParseCloudEventBatch parses a batch of 100 events of about 1 KiB.
func BenchmarkParseCloudEventBatch(b *testing.B) {
	body := benchCloudEventBatch(100)
	b.SetBytes(int64(len(body)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := ParseCloudEventBatch(body); err != nil {
			b.Fatal(err)
		}
	}
	reportEvents(b, 100)
}

// BenchmarkParseEventGridEvents parses 100 Event Grid events of about 1 KiB.
func BenchmarkParseEventGridEvents(b *testing.B) {
	body := benchEventGridBatch(100)
	b.SetBytes(int64(len(body)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := ParseEventGridEvents(body, "/topics/orders"); err != nil {
			b.Fatal(err)
		}
	}
	reportEvents(b, 100)
}

// BenchmarkToEventGrid renders one canonical event of about 1 KiB.
func BenchmarkToEventGrid(b *testing.B) {
	evs, err := ParseEventGridEvents(benchEventGridBatch(1), "/topics/orders")
	if err != nil {
		b.Fatal(err)
	}
	b.SetBytes(int64(len(evs[0].JSON)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := ToEventGrid(evs[0].JSON); err != nil {
			b.Fatal(err)
		}
	}
	reportEvents(b, 1)
}
