package clearml

import (
	"context"
	"encoding/json"
	"slices"
)

// DefaultPageSize is the page size of complete listings: the ClearML server's default and
// largest page (services._mongo.max_page_size). Without paging fields a *.get_all call
// answers only the first 500 matches.
const DefaultPageSize = 500

// listRequest is a *.get_all request that getAll can split into id chunks and pages.
type listRequest interface {
	// ids is the request's id filter; empty means no filter (as on the wire).
	ids() []string
	// onePage reports whether the caller chose a page itself (Page or PageSize set).
	onePage() bool
	// withPage is a copy of the request for these ids, asking for one page.
	withPage(ids []string, page, size int) any
}

// getAll returns every document a *.get_all call matches; key names the list in the answer
// ("tasks"), id gives a document's id. Nothing is left out whatever the number of matches:
//
//   - an id filter is de-duplicated and sent in chunks of at most PageSize ids, each chunk in
//     one call asking for a page of PageSize (an id matches at most one document, so a chunk's
//     answer always fits in its page);
//   - without an id filter, pages of PageSize are read in turn (page 0, 1, ...) until one comes
//     back short.
//
// The order is the server's (its default order, creation order in practice), chunk by chunk.
// A document met twice (shifted by a concurrent change between pages) is kept once. Any failed
// call fails the whole listing: no partial list is returned.
//
// When the caller set Page or PageSize, getAll makes that single call and returns its page.
func getAll[T any](ctx context.Context, c *Client, endpoint, key string, req listRequest, id func(*T) string) ([]T, error) {
	if req.onePage() {
		return listPage[T](ctx, c, endpoint, key, req)
	}
	size := c.cfg.PageSize
	out := []T{} // no match is an empty list, as the server answers it
	seen := map[string]bool{}
	add := func(items []T) {
		for i := range items {
			if k := id(&items[i]); !seen[k] {
				seen[k] = true
				out = append(out, items[i])
			}
		}
	}
	ids := req.ids()
	if len(ids) == 0 {
		for page := 0; ; page++ {
			items, err := listPage[T](ctx, c, endpoint, key, req.withPage(nil, page, size))
			if err != nil {
				return nil, err
			}
			add(items)
			if len(items) < size {
				return out, nil
			}
		}
	}
	unique := make([]string, 0, len(ids))
	known := make(map[string]bool, len(ids))
	for _, v := range ids {
		if !known[v] {
			known[v] = true
			unique = append(unique, v)
		}
	}
	for chunk := range slices.Chunk(unique, size) {
		items, err := listPage[T](ctx, c, endpoint, key, req.withPage(chunk, 0, size))
		if err != nil {
			return nil, err
		}
		add(items)
	}
	return out, nil
}

// listPage is one *.get_all call: the list under key in its answer.
func listPage[T any](ctx context.Context, c *Client, endpoint, key string, req any) ([]T, error) {
	data, err := callFor[map[string]json.RawMessage](ctx, c, endpoint, req)
	if err != nil {
		return nil, err
	}
	var items []T
	if raw, ok := (*data)[key]; ok {
		if err := json.Unmarshal(raw, &items); err != nil {
			return nil, &invalidResponseError{endpoint: endpoint, detail: "decoding data: " + err.Error()}
		}
	}
	return items, nil
}
