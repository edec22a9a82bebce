package clearml

import (
	"context"
	"errors"
	"fmt"
	"slices"
)

// Headers of impersonation (docs/clearml-protocol.md, "Owner tokens").
const (
	ImpersonateHeader = "X-Clearml-Impersonate-As"
	TenantHeader      = "X-Clearml-Tenant"
)

// ErrNotImpersonated is wrapped by LoginAs errors that are not the server's answer to a call but
// mean the same for every retry: the task has no owner, or the server answered a token that is
// not the owner's (a server that ignores the impersonation header).
var ErrNotImpersonated = errors.New("not impersonated")

// OwnerToken is a session token of another user, obtained through impersonation. Token is a
// credential: it goes into a Kubernetes Secret and nowhere else (no log, no error, no event).
type OwnerToken struct {
	Token  string
	Claims TokenClaims
}

// String never shows the token, so a stray %v cannot leak it.
func (t OwnerToken) String() string {
	return fmt.Sprintf("token of user %s (company %s, expires %s)", t.Claims.Identity.User, t.Claims.Identity.Company, t.Claims.Expires)
}

// CanImpersonate says whether a session with these claims may impersonate users, as ClearML's
// agent checks before it runs with --use-owner-token: the admin, root or system role, or an
// Enterprise service account allowed to (service_account_type 2 or more). The server decides in
// the end; this only lets the glue say so early.
func CanImpersonate(c TokenClaims) bool {
	return slices.Contains([]string{"admin", "root", "system"}, c.Identity.Role) || c.ServiceAccountType >= 2
}

// LoginAs returns a session token of userID, the owner of a task, as ClearML's glue gets one
// with --use-owner-token: auth.login made with the glue's own session and the header
// X-Clearml-Impersonate-As: <user>. The server answers with a token whose identity is that
// user's (400/6 when the glue's role may not impersonate, or the user is unknown to it). When
// company (the task's company) is set and the token is for another tenant (the tenant claim of
// a multi-tenant server, else the identity's company), a second auth.login, made with the new
// token and X-Clearml-Tenant: <company>, moves it to the task's company. No expiration is asked
// for: the server's default lifetime applies, as for the Python glue.
//
// Errors name the user and the company, never the token.
func (c *Client) LoginAs(ctx context.Context, userID, company string) (OwnerToken, error) {
	if userID == "" {
		return OwnerToken{}, fmt.Errorf("clearml: auth.login as the task's owner: the task has no owner (%w)", ErrNotImpersonated)
	}
	var out struct {
		Token string `json:"token"`
	}
	err := c.authorizedCallWith(ctx, "auth.login", map[string]string{ImpersonateHeader: userID}, "application/json", []byte("{}"), &out)
	if err != nil {
		return OwnerToken{}, fmt.Errorf("clearml: auth.login as user %s: %w", userID, err)
	}
	claims, err := decodeClaims(out.Token)
	if err != nil {
		return OwnerToken{}, fmt.Errorf("clearml: auth.login as user %s: %w (%w)", userID, err, ErrNotImpersonated)
	}
	if claims.Identity.User != userID {
		return OwnerToken{}, fmt.Errorf("clearml: auth.login as user %s: the server answered a token of user %q, not of the user asked for (%w)", userID, claims.Identity.User, ErrNotImpersonated)
	}
	if company == "" || tenantOf(claims) == company {
		return OwnerToken{Token: out.Token, Claims: claims}, nil
	}
	owner := out.Token
	out.Token = ""
	err = c.sendWith(ctx, "auth.login", "Bearer "+owner, map[string]string{TenantHeader: company}, "application/json", []byte("{}"), &out)
	if err != nil {
		return OwnerToken{}, fmt.Errorf("clearml: auth.login as user %s in tenant %s: %w", userID, company, err)
	}
	if claims, err = decodeClaims(out.Token); err != nil {
		return OwnerToken{}, fmt.Errorf("clearml: auth.login as user %s in tenant %s: %w (%w)", userID, company, err, ErrNotImpersonated)
	}
	if claims.Identity.User != userID || tenantOf(claims) != company {
		return OwnerToken{}, fmt.Errorf("clearml: auth.login as user %s in tenant %s: the server answered a token of user %q in %q (%w)", userID, company, claims.Identity.User, tenantOf(claims), ErrNotImpersonated)
	}
	return OwnerToken{Token: out.Token, Claims: claims}, nil
}

// tenantOf is the tenant a token acts in: its tenant claim on a multi-tenant server, else the
// identity's company.
func tenantOf(c TokenClaims) string {
	if c.Tenant != "" {
		return c.Tenant
	}
	return c.Identity.Company
}
