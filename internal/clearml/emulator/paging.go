package emulator

import (
	"encoding/json"
	"time"
)

// DefaultMaxPageSize is the largest page a *.get_all call answers, and the page it answers
// when the caller asks for none: the server's services._mongo.max_page_size.
const DefaultMaxPageSize = 500

// scrollLifetime is services._mongo.scroll_state_expiration_seconds: a scroll position is
// forgotten this long after its last use.
const scrollLifetime = 600 * time.Second

// scrollState is where a scroll_id continues.
type scrollState struct {
	position int
	expires  time.Time
}

// pager is the paging of one *.get_all call (tasks, queues, projects all page alike on the
// server). The call's matches, in the server's order, are cut with window.
type pager struct {
	all         bool // no paging: page and page_size both explicitly null
	start, size int
	scrollID    string // set when the call scrolls
	scroll      *scrollState
}

// newPager reads the paging fields of a get_all call, in the server's order of checks:
//
//   - scroll_id present (any value): size must be an integer ≥ 1; the call continues where the
//     scroll stopped (a missing, empty or expired id starts a new scroll), from the start again
//     with refresh_scroll; the answer carries the scroll_id. size is not capped.
//   - start present: an offset, with the same size rule.
//   - otherwise page (default 0) and page_size (default and cap MaxPageSize). A page without a
//     page size can only be asked with "page_size": null, which is 400/11; both null means no
//     paging at all.
func (s *Server) newPager(c *call) (*pager, *apiError) {
	if _, scrolling := c.data["scroll_id"]; scrolling {
		size, aerr := scrollSize(c.data)
		if aerr != nil {
			return nil, aerr
		}
		s.expireScrolls(c.now)
		id, _ := c.data["scroll_id"].(string)
		state, ok := s.scrolls[id]
		if id == "" || !ok {
			id, state = newID(), &scrollState{}
		}
		start := state.position
		if !falsy(c.data["refresh_scroll"]) {
			size, start = max(start, size), 0
		}
		// The state is stored (or moved) only once the call succeeds, in window.
		return &pager{start: start, size: size, scrollID: id, scroll: state}, nil
	}
	if v := c.data["start"]; v != nil {
		size, aerr := scrollSize(c.data)
		if aerr != nil {
			return nil, aerr
		}
		start, ok := intParam(v)
		if !ok || start < 0 {
			// The server hands a bad start to MongoDB and fails with a 500; a 400 is kinder.
			return nil, errValidation("start must be >=0", "field", "start")
		}
		return &pager{start: start, size: size}, nil
	}
	page, hasPage := 0, true
	if v, ok := c.data["page"]; ok {
		if hasPage = v != nil; hasPage {
			if page, ok = intParam(v); !ok {
				return nil, errValidation("error for field 'page'. value is wrong, expected type int")
			}
			if page < 0 {
				return nil, errValidation("page must be >=0", "field", "page")
			}
		}
	}
	pageSize, hasPageSize := s.opts.MaxPageSize, true
	if v, ok := c.data["page_size"]; ok {
		if hasPageSize = v != nil; hasPageSize {
			if pageSize, ok = intParam(v); !ok {
				return nil, errValidation("error for field 'page_size'. value is wrong, expected type int")
			}
			if pageSize < 1 {
				return nil, errValidation("page_size must be >0", "field", "page_size")
			}
		}
	}
	switch {
	case hasPageSize:
		pageSize = min(pageSize, s.opts.MaxPageSize)
		return &pager{start: page * pageSize, size: pageSize}, nil
	case hasPage:
		return nil, newError(400, 11, "Missing required fields", "page_size is required when page is requested", "field", "page_size")
	}
	return &pager{all: true}, nil
}

// window returns the bounds of the answer among n matches and records a scroll's new position.
func (s *Server) window(c *call, p *pager, n int) (lo, hi int) {
	if p.all {
		return 0, n
	}
	lo = min(p.start, n)
	hi = min(p.start+p.size, n)
	if p.scroll != nil {
		p.scroll.position = p.start + hi - lo
		p.scroll.expires = c.now.Add(scrollLifetime)
		s.scrolls[p.scrollID] = p.scroll
	}
	return lo, hi
}

// answer is the data of a get_all answer: the documents under key, and the scroll_id when
// the call scrolls.
func (p *pager) answer(key string, docs []any) map[string]any {
	data := map[string]any{key: docs}
	if p.scrollID != "" {
		data["scroll_id"] = p.scrollID
	}
	return data
}

// listAnswer is the common tail of the get_all handlers: it cuts the n matches with the
// call's paging and renders only the documents of the answer.
func (s *Server) listAnswer(c *call, p *pager, key string, n int, render func(i int) map[string]any) map[string]any {
	lo, hi := s.window(c, p, n)
	docs := make([]any, 0, hi-lo)
	for i := lo; i < hi; i++ {
		docs = append(docs, render(i))
	}
	return p.answer(key, docs)
}

func (s *Server) expireScrolls(now time.Time) {
	for id, st := range s.scrolls {
		if now.After(st.expires) {
			delete(s.scrolls, id)
		}
	}
}

// scrollSize is the size of a scroll or start call: an integer ≥ 1.
func scrollSize(data map[string]any) (int, *apiError) {
	size, ok := intParam(data["size"])
	if !ok || size < 1 {
		return 0, errValidation("Integer size parameter greater than 1 should be provided when working with scroll")
	}
	return size, nil
}

// intParam reads an integer request value: a JSON integer, or a query-string number.
func intParam(v any) (int, bool) {
	switch v := v.(type) {
	case json.Number:
		n, err := v.Int64()
		return int(n), err == nil
	case int64:
		return int(v), true
	}
	return 0, false
}

// idSet is the id filter of a get_all call, or nil when there is none.
func idSet(ids []string) map[string]bool {
	if len(ids) == 0 {
		return nil
	}
	set := make(map[string]bool, len(ids))
	for _, id := range ids {
		set[id] = true
	}
	return set
}
