package dispatch

import (
	"fmt"
	"strings"
	"testing"

	"github.com/sluicehq/sluice/schemas"
)

// filterBenchEvent is a stored CloudEvent of about size bytes: an order
// whose data the filters below read, padded with members they do not.
func filterBenchEvent(tb testing.TB, size int) *Event {
	tb.Helper()
	head := `{"specversion":"1.0","id":"8f7e1c2a-4b3d-4e5f-9a8b-7c6d5e4f3a2b","source":"/topics/orders","type":"Orders.Created",` +
		`"subject":"/orders/eu/12345","time":"2026-01-02T15:04:05.123Z","datacontenttype":"application/json","partitionkey":"eu",` +
		`"data":{"orderId":"12345","region":"eu-west","total":129.95,"currency":"EUR","paid":true,` +
		`"customer":{"id":"c-778","tier":2,"email":"Ada@Example.com"},"tags":["gift","express"],"notes":[`
	var b strings.Builder
	b.WriteString(head)
	for i := 0; b.Len() < size-40; i++ {
		if i > 0 {
			b.WriteByte(',')
		}
		fmt.Fprintf(&b, `{"line":%d,"sku":"SKU-%05d","qty":%d}`, i, i*7, i%5+1)
	}
	b.WriteString(`],"channel":"web"}}`)
	e, err := ParseEvent([]byte(b.String()))
	if err != nil {
		tb.Fatal(err)
	}
	return &e
}

// tenAdvanced are ten advanced filters of different operators, all passing
// on filterBenchEvent, so that every one is evaluated.
var tenAdvanced = schemas.Filter{
	EnableAdvancedFilteringOnArrays: true,
	AdvancedFilters: []schemas.AdvancedFilter{
		{OperatorType: schemas.OpStringIn, Key: "type", Values: []any{"orders.created", "orders.updated"}},
		{OperatorType: schemas.OpStringBeginsWith, Key: "subject", Values: []any{"/orders/eu/"}},
		{OperatorType: schemas.OpNumberGreaterThan, Key: "data.total", Value: 100.0},
		{OperatorType: schemas.OpNumberInRange, Key: "data.customer.tier", Values: []any{[]any{1.0, 3.0}}},
		{OperatorType: schemas.OpBoolEquals, Key: "data.paid", Value: true},
		{OperatorType: schemas.OpStringContains, Key: "data.customer.email", Values: []any{"@example.com"}},
		{OperatorType: schemas.OpStringNotIn, Key: "data.region", Values: []any{"us-east", "us-west"}},
		{OperatorType: schemas.OpIsNotNull, Key: "data.orderId"},
		{OperatorType: schemas.OpStringIn, Key: "data.tags", Values: []any{"express"}},
		{OperatorType: schemas.OpStringEndsWith, Key: "data.channel", Values: []any{"web", "app"}},
	},
}

// BenchmarkFilter10Advanced measures events per second on one core through
// a filter with ten advanced filters, on a 1 KiB event.
func BenchmarkFilter10Advanced(b *testing.B) {
	benchFilter(b, 1024)
}

// BenchmarkFilter10Advanced1MiB is the same on an event at the 1 MB limit,
// its bulk in a data member no filter reads.
func BenchmarkFilter10Advanced1MiB(b *testing.B) {
	benchFilter(b, 1<<20)
}

func benchFilter(b *testing.B, size int) {
	e := filterBenchEvent(b, size)
	f := NewFilter(&tenAdvanced, schemas.CloudEventSchemaV1_0)
	if r := f.Unsupported(); r != "" {
		b.Fatal(r)
	}
	if !f.Match(e) {
		b.Fatal("the benchmark filter does not match its event")
	}
	b.SetBytes(int64(len(e.JSON)))
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if !f.Match(e) {
			b.Fatal("no match")
		}
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "events/s")
}
