package clearml

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"
)

// TokenClaims is what the client reads from the session JWT, decoded without verifying it
// (the client does not know the server secret), like the Python agent
// (docs/clearml-protocol.md, "Transport").
type TokenClaims struct {
	Identity Identity
	IssuedAt time.Time
	// Expires is zero for a token without exp, which never expires client-side.
	Expires       time.Time
	APIVersion    string
	FeatureSet    string
	ServerVersion string
	Env           string
	// Tenant is the tenant claim of a multi-tenant (Enterprise) server; empty elsewhere.
	Tenant string
	// ServiceAccountType is the identity's service_account_type (Enterprise; 0 when absent).
	ServiceAccountType int
}

// session is the current token and the login in flight, guarded by Client.mu.
type session struct {
	token  string
	claims TokenClaims
	// refreshAt: from then on a new token is fetched in the background; zero = never.
	refreshAt time.Time
	// unusableAt: from then on callers wait for the new token; zero = never.
	unusableAt time.Time
	flight     *loginFlight
}

// loginFlight is one auth.login shared by every caller that needs a token meanwhile.
type loginFlight struct {
	done  chan struct{}
	token string
	err   error
}

// Login fetches a new session token now. It is optional (calls log in on demand) but lets
// startup fail fast on bad credentials or an unreachable server.
func (c *Client) Login(ctx context.Context) error {
	c.mu.Lock()
	f := c.startLoginLocked(ctx)
	c.mu.Unlock()
	return c.wait(ctx, f)
}

// TryLogin makes one login attempt, without retries and within ctx, and keeps the token when it
// succeeds: for checks that must answer at once and say why a login fails.
func (c *Client) TryLogin(ctx context.Context) error {
	token, claims, err := c.login(ctx, true)
	if err != nil {
		return err
	}
	c.mu.Lock()
	c.setTokenLocked(token, claims)
	c.mu.Unlock()
	return nil
}

// Claims returns the claims of the current token; ok is false before the first login.
func (c *Client) Claims() (claims TokenClaims, ok bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.session.claims, c.session.token != ""
}

// token returns a usable token. A token inside its refresh window is still returned while a
// single background login replaces it; without a usable token every caller waits for that
// same login.
func (c *Client) token(ctx context.Context) (string, error) {
	now := time.Now()
	c.mu.Lock()
	s := &c.session
	if s.token != "" && (s.unusableAt.IsZero() || now.Before(s.unusableAt)) {
		token := s.token
		if !s.refreshAt.IsZero() && !now.Before(s.refreshAt) && s.flight == nil {
			c.startLoginLocked(ctx)
		}
		c.mu.Unlock()
		return token, nil
	}
	f := c.startLoginLocked(ctx)
	c.mu.Unlock()
	if err := c.wait(ctx, f); err != nil {
		return "", err
	}
	return f.token, nil
}

func (c *Client) wait(ctx context.Context, f *loginFlight) error {
	select {
	case <-f.done:
		return f.err
	case <-ctx.Done():
		return fmt.Errorf("clearml: waiting for auth.login: %w", context.Cause(ctx))
	}
}

// startLoginLocked joins the login in flight or starts one. The login outlives the caller's
// cancellation because other callers may be waiting for it; retries and the HTTP timeout bound it.
func (c *Client) startLoginLocked(ctx context.Context) *loginFlight {
	if c.session.flight != nil {
		return c.session.flight
	}
	f := &loginFlight{done: make(chan struct{})}
	c.session.flight = f
	go func() {
		token, claims, err := c.login(context.WithoutCancel(ctx), false)
		c.mu.Lock()
		if err == nil {
			c.setTokenLocked(token, claims)
		}
		c.session.flight = nil
		c.mu.Unlock()
		f.token, f.err = token, err
		close(f.done)
	}()
	return f
}

// invalidate drops token after the server rejected it, unless it was already replaced.
func (c *Client) invalidate(token string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.session.token == token {
		c.session.token = ""
	}
}

// login calls auth.login, with the client's retries unless once.
func (c *Client) login(ctx context.Context, once bool) (string, TokenClaims, error) {
	var out struct {
		Token string `json:"token"`
	}
	authorization := c.basicAuth
	if authorization == "" {
		// A client made from a session token (Config.AuthToken) renews it with itself.
		c.mu.Lock()
		authorization = "Bearer " + c.renewWith
		c.mu.Unlock()
	}
	send := c.send
	if once {
		send = func(ctx context.Context, endpoint, authorization, contentType string, body []byte, out any) error {
			return c.roundTrip(ctx, endpoint, authorization, nil, contentType, body, out)
		}
	}
	if err := send(ctx, "auth.login", authorization, "application/json", []byte("{}"), &out); err != nil {
		c.log.Warn("clearml login failed", "error", err.Error())
		return "", TokenClaims{}, err
	}
	claims, err := decodeClaims(out.Token)
	if err != nil {
		return "", TokenClaims{}, fmt.Errorf("clearml: auth.login: %w", err)
	}
	c.log.Info("clearml login", "user", claims.Identity.User, "api_version", claims.APIVersion,
		"feature_set", claims.FeatureSet, "server_version", claims.ServerVersion, "expires", claims.Expires)
	return out.Token, claims, nil
}

// setTokenLocked installs a token and schedules its refresh: RefreshThreshold before expiry,
// at most half the lifetime (short-lived tokens) and at least one round trip.
func (c *Client) setTokenLocked(token string, claims TokenClaims) {
	s := &c.session
	s.token, s.claims = token, claims
	c.renewWith = token
	s.refreshAt, s.unusableAt = time.Time{}, time.Time{}
	if claims.Expires.IsZero() {
		return
	}
	issued := claims.IssuedAt
	if issued.IsZero() || issued.After(claims.Expires) {
		issued = time.Now()
	}
	threshold := min(c.cfg.RefreshThreshold, claims.Expires.Sub(issued)/2)
	threshold = max(threshold, c.minLifetime)
	s.refreshAt = claims.Expires.Add(-threshold)
	s.unusableAt = claims.Expires.Add(-c.minLifetime)
}

// decodeClaims reads the payload segment of a JWT. Errors never quote the token.
func decodeClaims(token string) (TokenClaims, error) {
	parts := strings.Split(token, ".")
	if len(parts) != 3 {
		return TokenClaims{}, errors.New("token is not a JWT")
	}
	payload, err := base64.RawURLEncoding.DecodeString(strings.TrimRight(parts[1], "="))
	if err != nil {
		return TokenClaims{}, errors.New("token payload is not base64url")
	}
	var raw struct {
		Identity      Identity `json:"identity"`
		IAT           float64  `json:"iat"`
		Exp           float64  `json:"exp"`
		APIVersion    string   `json:"api_version"`
		FeatureSet    string   `json:"feature_set"`
		ServerVersion string   `json:"server_version"`
		Env           string   `json:"env"`
		Tenant        string   `json:"tenant"`
	}
	if err := json.Unmarshal(payload, &raw); err != nil {
		return TokenClaims{}, errors.New("token payload is not a JSON object of claims")
	}
	claims := TokenClaims{
		Identity:      raw.Identity,
		IssuedAt:      unixTime(raw.IAT),
		Expires:       unixTime(raw.Exp),
		APIVersion:    raw.APIVersion,
		FeatureSet:    raw.FeatureSet,
		ServerVersion: raw.ServerVersion,
		Env:           raw.Env,
		Tenant:        raw.Tenant,
	}
	var extra struct {
		Identity struct {
			ServiceAccountType any `json:"service_account_type"`
		} `json:"identity"`
	}
	if json.Unmarshal(payload, &extra) == nil {
		claims.ServiceAccountType = intClaim(extra.Identity.ServiceAccountType)
	}
	if claims.APIVersion == "" {
		// The Python agent's fallback for servers that predate the claim.
		claims.APIVersion = "2.1"
		if raw.Env == "prod" {
			claims.APIVersion = "2.2"
		}
	}
	return claims, nil
}

func unixTime(sec float64) time.Time {
	if sec <= 0 || math.IsInf(sec, 0) || math.IsNaN(sec) {
		return time.Time{}
	}
	whole, frac := math.Modf(sec)
	return time.Unix(int64(whole), int64(frac*1e9)).UTC()
}

// intClaim reads a number claim that may be sent as a number or a string; anything else is 0.
func intClaim(v any) int {
	switch v := v.(type) {
	case float64:
		return int(v)
	case string:
		n, _ := strconv.Atoi(strings.TrimSpace(v))
		return n
	}
	return 0
}
