// Package ingest accepts Event Grid publish requests and appends the events to
// the object log (not yet implemented).
package ingest
