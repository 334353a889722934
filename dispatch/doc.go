// Package dispatch delivers logged events to subscribers' endpoints with
// retries and dead-lettering (not yet implemented).
package dispatch
