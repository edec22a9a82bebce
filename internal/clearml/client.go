package clearml

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/cenkalti/backoff/v5"
)

// APIVersion is put in every request path. The server serves any version ≥ an endpoint's
// minimum (2.4 at most for the calls used here); 2.31 is the first version documenting every
// field the glue sends (update_execution_queue) and is past the pre-2.13 docker_cmd transforms.
const APIVersion = "2.31"

// Defaults of Config.
const (
	DefaultRefreshThreshold     = 12 * time.Hour
	DefaultMaxRetryElapsed      = 5 * time.Minute
	DefaultRetryInitialInterval = time.Second
	DefaultRetryMaxInterval     = 120 * time.Second
	DefaultHTTPTimeout          = 30 * time.Second
)

// maxResponseBytes bounds a response body; ClearML responses for these calls are small.
const maxResponseBytes = 64 << 20

// Config configures a Client. Zero values take the defaults above.
type Config struct {
	// APIHost is the API server URL, e.g. http://clearml-apiserver:8008; a path prefix is kept.
	APIHost   string
	AccessKey string
	SecretKey string
	// AuthToken is a session token to call with instead of AccessKey and SecretKey, as a task
	// pod's agent does with CLEARML_AUTH_TOKEN; it is renewed with auth.login made with itself.
	AuthToken string
	// WorkerHeader is sent as X-ClearML-Worker (the default worker of log events);
	// the default is the hostname, like the Python agent.
	WorkerHeader string
	// HTTPClient defaults to a client with DefaultHTTPTimeout. Do not give it a cookie jar:
	// the server would then authenticate with its login cookie instead of our token.
	HTTPClient *http.Client
	// RefreshThreshold is how long before the token expires a new one is fetched. It is
	// lowered to half the token lifetime for short-lived tokens (so that not every call logs
	// in) but never below one round trip (the HTTP timeout), so a token never expires in flight.
	RefreshThreshold time.Duration
	// MaxRetryElapsed bounds the retries of one call (ctx bounds them too); negative disables retries.
	MaxRetryElapsed time.Duration
	// RetryInitialInterval and RetryMaxInterval shape the exponential backoff (factor 2, ±50% jitter).
	RetryInitialInterval time.Duration
	RetryMaxInterval     time.Duration
	// RetryNonIdempotent also retries calls whose replay is visible (tasks.enqueue, tasks.dequeue,
	// creates, queues.add_task, events.add_batch) after failures that may have been applied.
	// They are always retried when the request provably was not processed.
	RetryNonIdempotent bool
	// PageSize is how many documents one *.get_all call of a complete listing asks for (and
	// how many ids it sends at most); default DefaultPageSize. It must not exceed the server's
	// services._mongo.max_page_size (500 unless changed): a server that answered fewer than
	// asked would make a page look like the last one.
	PageSize int
	// Logger gets retries and token refreshes; never a key, secret or token. Default: discard.
	Logger *slog.Logger
}

// Client calls the ClearML API. It is safe for concurrent use.
type Client struct {
	base        string
	cfg         Config
	log         *slog.Logger
	basicAuth   string
	secrets     *redactor
	minLifetime time.Duration // one round trip: a token closer than this to expiry is unusable

	mu      sync.Mutex
	session session
	// renewWith is the token a client made from Config.AuthToken renews itself with: the
	// latest one, kept when the session drops a rejected token.
	renewWith string
}

// New validates cfg, fills in defaults and returns a client. It does not contact the server;
// call Login to fail fast on bad credentials.
func New(cfg Config) (*Client, error) {
	u, err := url.Parse(strings.TrimRight(cfg.APIHost, "/"))
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("clearml: APIHost %q is not an http(s) URL", cfg.APIHost)
	}
	if u.User != nil || u.RawQuery != "" || u.Fragment != "" {
		// Credentials in the URL would leak into every transport error message.
		return nil, errors.New("clearml: APIHost must not contain user info, a query or a fragment")
	}
	if (cfg.AccessKey == "" || cfg.SecretKey == "") && cfg.AuthToken == "" {
		return nil, errors.New("clearml: AccessKey and SecretKey are required (or AuthToken)")
	}
	if cfg.WorkerHeader == "" {
		cfg.WorkerHeader, _ = os.Hostname()
	}
	if cfg.HTTPClient == nil {
		cfg.HTTPClient = &http.Client{Timeout: DefaultHTTPTimeout}
	}
	if cfg.RefreshThreshold <= 0 {
		cfg.RefreshThreshold = DefaultRefreshThreshold
	}
	if cfg.MaxRetryElapsed == 0 {
		cfg.MaxRetryElapsed = DefaultMaxRetryElapsed
	}
	if cfg.RetryInitialInterval <= 0 {
		cfg.RetryInitialInterval = DefaultRetryInitialInterval
	}
	if cfg.RetryMaxInterval <= 0 {
		cfg.RetryMaxInterval = DefaultRetryMaxInterval
	}
	if cfg.PageSize <= 0 {
		cfg.PageSize = DefaultPageSize
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	minLifetime := cfg.HTTPClient.Timeout
	if minLifetime <= 0 {
		minLifetime = DefaultHTTPTimeout
	}
	c := &Client{
		base:        u.String(),
		cfg:         cfg,
		log:         cfg.Logger.With("component", "clearml-client"),
		secrets:     newRedactor(cfg.AccessKey, cfg.SecretKey),
		minLifetime: minLifetime,
	}
	if cfg.AccessKey != "" && cfg.SecretKey != "" {
		c.basicAuth = "Basic " + base64.StdEncoding.EncodeToString([]byte(cfg.AccessKey+":"+cfg.SecretKey))
	} else {
		claims, err := decodeClaims(cfg.AuthToken)
		if err != nil {
			return nil, fmt.Errorf("clearml: AuthToken: %w", err)
		}
		c.setTokenLocked(cfg.AuthToken, claims)
	}
	return c, nil
}

// Call sends req as the JSON body of service.action (e.g. "tasks.get_all") and decodes the
// response data into out (skipped when out is nil). It is the transport behind every typed
// method and serves endpoints that have none.
func (c *Client) Call(ctx context.Context, endpoint string, req, out any) error {
	body := []byte("{}")
	if req != nil {
		var err error
		if body, err = json.Marshal(req); err != nil {
			return fmt.Errorf("clearml: %s: encoding request: %w", endpoint, err)
		}
	}
	return c.authorizedCall(ctx, endpoint, "application/json", body, out)
}

// authorizedCall sends with the session token; a 401 refreshes the token once and retries once.
func (c *Client) authorizedCall(ctx context.Context, endpoint, contentType string, body []byte, out any) error {
	return c.authorizedCallWith(ctx, endpoint, nil, contentType, body, out)
}

// authorizedCallWith is authorizedCall with extra request headers.
func (c *Client) authorizedCallWith(ctx context.Context, endpoint string, headers map[string]string, contentType string, body []byte, out any) error {
	token, err := c.token(ctx)
	if err != nil {
		return err
	}
	err = c.sendWith(ctx, endpoint, "Bearer "+token, headers, contentType, body, out)
	var apiErr *APIError
	if !errors.As(err, &apiErr) || apiErr.HTTPStatus != http.StatusUnauthorized {
		return err
	}
	c.log.Info("token rejected, logging in again", "endpoint", endpoint, "subcode", apiErr.Subcode)
	c.invalidate(token)
	if token, err = c.token(ctx); err != nil {
		return err
	}
	return c.sendWith(ctx, endpoint, "Bearer "+token, headers, contentType, body, out)
}

// send posts body to endpoint with retries (exponential backoff with jitter) on transport
// errors and 429/502/503/509, within ctx and MaxRetryElapsed.
func (c *Client) send(ctx context.Context, endpoint, authorization, contentType string, body []byte, out any) error {
	return c.sendWith(ctx, endpoint, authorization, nil, contentType, body, out)
}

// sendWith is send with extra request headers.
func (c *Client) sendWith(ctx context.Context, endpoint, authorization string, headers map[string]string, contentType string, body []byte, out any) error {
	var lastErr error
	attempt := 0
	op := func() (struct{}, error) {
		attempt++
		err := c.roundTrip(ctx, endpoint, authorization, headers, contentType, body, out)
		if err == nil {
			return struct{}{}, nil
		}
		lastErr = err
		if ctx.Err() != nil || !c.retryable(endpoint, err) {
			return struct{}{}, backoff.Permanent(err)
		}
		return struct{}{}, err
	}
	opts := []backoff.RetryOption{
		backoff.WithBackOff(&backoff.ExponentialBackOff{
			InitialInterval:     c.cfg.RetryInitialInterval,
			RandomizationFactor: 0.5,
			Multiplier:          2,
			MaxInterval:         c.cfg.RetryMaxInterval,
		}),
		backoff.WithNotify(func(err error, wait time.Duration) {
			c.log.Warn("clearml call failed, retrying", "endpoint", endpoint, "attempt", attempt, "wait", wait, "error", err.Error())
		}),
	}
	if c.cfg.MaxRetryElapsed < 0 {
		opts = append(opts, backoff.WithMaxTries(1))
	} else {
		opts = append(opts, backoff.WithMaxElapsedTime(c.cfg.MaxRetryElapsed))
	}
	_, err := backoff.Retry(ctx, op, opts...)
	switch {
	case err == nil || lastErr == nil:
		return err
	case errors.Is(err, lastErr):
		return lastErr // not the backoff package's wrapper
	default:
		// The context ended while waiting: say why the call was still failing.
		return fmt.Errorf("clearml: %s: %w (last error: %w)", endpoint, err, lastErr)
	}
}

// roundTrip is one HTTP exchange. Server-provided text is redacted before it enters an error.
func (c *Client) roundTrip(ctx context.Context, endpoint, authorization string, headers map[string]string, contentType string, body []byte, out any) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, c.base+"/v"+APIVersion+"/"+endpoint, bytes.NewReader(body))
	if err != nil {
		return fmt.Errorf("clearml: %s: %w", endpoint, err)
	}
	req.Header.Set("Content-Type", contentType)
	req.Header.Set("Accept", "application/json")
	if authorization != "" {
		req.Header.Set("Authorization", authorization)
	}
	if c.cfg.WorkerHeader != "" {
		req.Header.Set("X-ClearML-Worker", c.cfg.WorkerHeader)
	}
	for k, v := range headers {
		req.Header.Set(k, v)
	}
	resp, err := c.cfg.HTTPClient.Do(req)
	if err != nil {
		return &transportError{endpoint: endpoint, err: err}
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, maxResponseBytes))
	if err != nil {
		return &transportError{endpoint: endpoint, err: fmt.Errorf("reading response (HTTP %d): %w", resp.StatusCode, err)}
	}
	return c.secrets.scrub(decodeResponse(endpoint, resp.StatusCode, data, out))
}

// transportError is a failure below HTTP (dial, reset, timeout, short read).
type transportError struct {
	endpoint string
	err      error
}

func (e *transportError) Error() string { return "clearml: " + e.endpoint + ": " + e.err.Error() }
func (e *transportError) Unwrap() error { return e.err }

// nonIdempotent lists endpoints whose replay after an applied first attempt changes the
// outcome (a duplicate entry or log line, a 706, or updated:0 that makes the pod agent quit).
// queues.get_next_task is not listed: a pop whose response was lost is lost either way.
var nonIdempotent = map[string]bool{
	"tasks.enqueue":    true,
	"tasks.dequeue":    true,
	"tasks.create":     true,
	"queues.create":    true,
	"projects.create":  true,
	"queues.add_task":  true,
	"events.add_batch": true,
}

func (c *Client) retryable(endpoint string, err error) bool {
	var apiErr *APIError
	if errors.As(err, &apiErr) {
		switch apiErr.HTTPStatus {
		case http.StatusTooManyRequests, http.StatusServiceUnavailable, 509:
			// Refused before processing (rate limit, maintenance, bandwidth): safe for any call.
			return true
		case http.StatusBadGateway:
			return c.cfg.RetryNonIdempotent || !nonIdempotent[endpoint]
		}
		return false
	}
	var tErr *transportError
	if !errors.As(err, &tErr) {
		return false // ErrInvalidResponse and encoding errors do not heal by themselves
	}
	var opErr *net.OpError
	if errors.As(err, &opErr) && opErr.Op == "dial" {
		return true // nothing was sent
	}
	return c.cfg.RetryNonIdempotent || !nonIdempotent[endpoint]
}
