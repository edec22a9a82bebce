package clearml

import "context"

// ServerInfo is server.info: the server and API versions.
type ServerInfo struct {
	Version    string `json:"version"`
	Build      string `json:"build"`
	Commit     string `json:"commit"`
	UID        string `json:"uid"`
	APIVersion string `json:"api_version"`
}

// ServerInfo returns the server's versions (an authorized call).
func (c *Client) ServerInfo(ctx context.Context) (*ServerInfo, error) {
	return callFor[ServerInfo](ctx, c, "server.info", nil)
}

// DebugPing checks that the server answers; it needs no credentials, so it suits liveness
// checks that must not log in.
func (c *Client) DebugPing(ctx context.Context) error {
	return c.send(ctx, "debug.ping", "", "application/json", []byte("{}"), nil)
}
