package emulator

import (
	"crypto/hmac"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/json"
	"strings"
	"time"
)

// maxExpirationSec is the longest token auth.login issues on request (one year).
const maxExpirationSec = 365 * 24 * 3600

// tokenClaims are the claims of the open-source server's JWT (docs/clearml-protocol.md, "Transport").
type tokenClaims struct {
	Identity      identity `json:"identity"`
	IAT           int64    `json:"iat"`
	Exp           int64    `json:"exp,omitempty"`
	SessionID     string   `json:"session_id"`
	Env           string   `json:"env"`
	AuthType      string   `json:"auth_type"`
	APIVersion    string   `json:"api_version"`
	ServerVersion string   `json:"server_version"`
	ServerBuild   string   `json:"server_build"`
	FeatureSet    string   `json:"feature_set"`
	// Tenant is the Enterprise multi-tenant claim (Options.Tenants): the identity's company.
	Tenant string `json:"tenant,omitempty"`
}

// authorize checks the Authorization header: Basic key:secret or Bearer JWT, as the server
// does for every authorized endpoint. Callers hold s.mu.
func (s *Server) authorize(c *call, header string) (identity, *apiError) {
	if header == "" {
		return identity{}, errUnauthorized(20, "")
	}
	scheme, value, _ := strings.Cut(header, " ")
	switch scheme {
	case "Basic":
		raw, err := base64.StdEncoding.DecodeString(value)
		if err != nil {
			return identity{}, errUnauthorized(21, "Incorrect padding")
		}
		key, secret, _ := strings.Cut(string(raw), ":")
		k, ok := s.keys[key]
		if !ok || subtle.ConstantTimeCompare([]byte(secret), []byte(k.secret)) != 1 {
			return identity{}, errUnauthorized(22, "failed to locate provided credentials")
		}
		u := s.users[k.user]
		return s.identityOf(u, u.Company), nil
	case "Bearer":
		return s.verifyToken(value, c.now)
	default:
		return identity{}, errUnauthorized(10, "")
	}
}

func (s *Server) userIdentity() identity {
	return s.identityOf(s.users[s.opts.UserID], s.opts.CompanyID)
}

// identityOf is the identity of u acting in company, as the server builds it from its
// records (AuthBLL.get_token_for_user): the user's name and role, the company's name.
func (s *Server) identityOf(u *User, company string) identity {
	return identity{User: u.ID, Company: company, Role: orDefault(u.Role, roleUser), UserName: u.Name,
		CompanyName: orDefault(s.companies[company], company)}
}

var jwtHeader = base64.RawURLEncoding.EncodeToString([]byte(`{"alg":"HS256","typ":"JWT"}`))

// issueToken signs an HS256 JWT for the identity; lifetime 0 means no exp claim.
func (s *Server) issueToken(id identity, now time.Time, lifetime time.Duration) string {
	claims := tokenClaims{
		Identity: id, IAT: now.Unix(), SessionID: newID(), Env: "emulator", AuthType: "Bearer",
		APIVersion: maxVersion.String(), ServerVersion: ServerVersion, ServerBuild: "emulator", FeatureSet: "basic",
	}
	if s.opts.Tenants {
		claims.Tenant = id.Company
	}
	if lifetime != 0 {
		claims.Exp = now.Add(lifetime).Unix()
	}
	payload, _ := json.Marshal(claims)
	signingInput := jwtHeader + "." + base64.RawURLEncoding.EncodeToString(payload)
	s.sessions[claims.SessionID] = false
	return signingInput + "." + s.sign(signingInput)
}

func (s *Server) sign(input string) string {
	mac := hmac.New(sha256.New, s.tokenKey)
	mac.Write([]byte(input))
	return base64.RawURLEncoding.EncodeToString(mac.Sum(nil))
}

func invalidToken(reason string) *apiError {
	return errUnauthorized(30, "invalid jwt token", "reason", reason)
}

func (s *Server) verifyToken(token string, now time.Time) (identity, *apiError) {
	// A token's signature and payload never change: they are checked once (the check was a
	// tenth of the emulator's CPU in the benchmarks' bursts); expiry and revocation every call.
	claims, ok := s.verified[token]
	if !ok {
		var aerr *apiError
		if claims, aerr = s.parseToken(token); aerr != nil {
			return identity{}, aerr
		}
		if len(s.verified) >= maxVerifiedTokens {
			clear(s.verified)
		}
		s.verified[token] = claims
	}
	if claims.Exp != 0 && now.Unix() >= claims.Exp {
		return identity{}, invalidToken("Signature has expired")
	}
	if claims.Identity.User == "" {
		return identity{}, errUnauthorized(30, "token missing identity")
	}
	if s.sessions[claims.SessionID] {
		return identity{}, errUnauthorized(30, "revoked token")
	}
	return claims.Identity, nil
}

// maxVerifiedTokens bounds verifyToken's memory of checked tokens (one per login).
const maxVerifiedTokens = 1024

// parseToken checks a token's signature and decodes its claims.
func (s *Server) parseToken(token string) (tokenClaims, *apiError) {
	var claims tokenClaims
	parts := strings.Split(token, ".")
	if len(parts) != 3 {
		return claims, invalidToken("Not enough segments")
	}
	if !hmac.Equal([]byte(parts[2]), []byte(s.sign(parts[0]+"."+parts[1]))) {
		return claims, invalidToken("Signature verification failed")
	}
	payload, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil || json.Unmarshal(payload, &claims) != nil {
		return claims, invalidToken("Invalid payload string")
	}
	return claims, nil
}

// login is auth.login: a new token for the caller (Basic or Bearer renewal), or for the user
// the caller impersonates (X-Clearml-Impersonate-As). Like the server, the token's identity is
// rebuilt from the user's record, so an impersonated user's token is that user's own.
func login(s *Server, c *call) (any, *apiError) {
	req, aerr := decode[struct {
		ExpirationSec *int64 `json:"expiration_sec"`
	}](c)
	if aerr != nil {
		return nil, aerr
	}
	lifetime := s.tokenLifetime
	if req.ExpirationSec != nil && *req.ExpirationSec != 0 {
		if *req.ExpirationSec > maxExpirationSec {
			return nil, errValidation("", "expiration_sec", *req.ExpirationSec, "max", maxExpirationSec)
		}
		lifetime = time.Duration(*req.ExpirationSec) * time.Second
	}
	u, ok := s.users[c.identity.User]
	if !ok {
		return nil, newError(400, 301, "Invalid user id", "", "id", c.identity.User, "company", c.identity.Company)
	}
	token := s.issueToken(s.identityOf(u, c.identity.Company), c.now, lifetime)
	c.setCookie = token
	return map[string]any{"token": token}, nil
}
