package schemas

import (
	"bytes"
	"encoding/json"
	"fmt"
)

// checkData enforces on event data what the token walker enforces on
// attributes (no duplicate keys, bounded nesting) in one pass over bytes
// that json.Decoder already found to be valid JSON, allocating nothing on
// the happy path: event data is most of every publish request. It returns
// the path and message of the first problem, or ok.
func checkData(raw []byte, path string, depth, limit int) (field, msg string, ok bool) {
	s := dataScan{b: raw, limit: limit}
	if s.value(depth) {
		return "", "", true
	}
	field = path
	for _, seg := range s.stack {
		if seg.isKey {
			if seg.raw != nil {
				seg.key = unquote(seg.raw)
			}
			field = fieldPath(field, seg.key)
		} else {
			field = indexPath(field, seg.idx)
		}
	}
	return field, s.msg, false
}

type dataScan struct {
	b     []byte
	i     int
	limit int
	stack []dataSeg // where the scan is, for the error path
	msg   string
}

type dataSeg struct {
	isKey bool
	key   string // decoded, once known
	raw   []byte // the key as written (quoted), decoded only for an error path
	idx   int
}

func (s *dataScan) ws() {
	for s.i < len(s.b) && (s.b[s.i] == ' ' || s.b[s.i] == '\t' || s.b[s.i] == '\n' || s.b[s.i] == '\r') {
		s.i++
	}
}

// value scans one value at nesting depth; false means a problem (in s.msg,
// at the path in s.stack).
func (s *dataScan) value(depth int) bool {
	s.ws()
	if depth > s.limit {
		s.msg = fmt.Sprintf("nested more than %d levels deep", s.limit)
		return false
	}
	switch s.b[s.i] {
	case '{':
		s.i++
		var buf [8][]byte
		keys := buf[:0] // objects are small: a linear search beats a map
		for n := 0; ; n++ {
			s.ws()
			if s.b[s.i] == '}' {
				s.i++
				return true
			}
			if s.b[s.i] == ',' {
				s.i++
				s.ws()
			}
			key := s.str()
			for _, k := range keys {
				if bytes.Equal(k, key) {
					s.stack = append(s.stack, dataSeg{isKey: true, key: unquote(key)})
					s.msg = "duplicate key"
					return false
				}
			}
			keys = append(keys, key)
			s.ws()
			s.i++ // ':'
			s.stack = append(s.stack, dataSeg{isKey: true, raw: key})
			if !s.value(depth + 1) {
				return false
			}
			s.stack = s.stack[:len(s.stack)-1]
		}
	case '[':
		s.i++
		for n := 0; ; n++ {
			s.ws()
			if s.b[s.i] == ']' {
				s.i++
				return true
			}
			if s.b[s.i] == ',' {
				s.i++
			}
			s.stack = append(s.stack, dataSeg{idx: n})
			if !s.value(depth + 1) {
				return false
			}
			s.stack = s.stack[:len(s.stack)-1]
		}
	case '"':
		s.str()
		return true
	default: // number, true, false, null
		for s.i < len(s.b) {
			switch s.b[s.i] {
			case ',', ']', '}', ' ', '\t', '\n', '\r':
				return true
			}
			s.i++
		}
		return true
	}
}

// str scans a string and returns it as written, quotes included, so that
// keys compare without allocating. Keys spelled with different escapes for
// the same text ("a" and "\u0061") compare unequal here; decoders treat
// them as one key, so such an event is accepted with a duplicate that
// later readers resolve as encoding/json does (the last one wins).
func (s *dataScan) str() []byte {
	start := s.i
	for s.i++; s.b[s.i] != '"'; s.i++ {
		if s.b[s.i] == '\\' {
			s.i++
		}
	}
	s.i++
	return s.b[start:s.i]
}

// unquote decodes a JSON string known to be valid.
func unquote(raw []byte) string {
	var v string
	_ = json.Unmarshal(raw, &v)
	return v
}
